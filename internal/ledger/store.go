package ledger

import (
	"bytes"
	"encoding/binary"
	"fmt"

	dbm "github.com/cometbft/cometbft-db"

	"github.com/zerogrid/zerogrid/internal/ledger/trie"
	"github.com/zerogrid/zerogrid/internal/wire"
)

// The store keeps application state under keyPrefix and its own bookkeeping
// (last height, app hash, block time) under metaKey, outside the hashed
// state.
var (
	keyPrefix = []byte("s/")
	metaKey   = []byte("m/meta")
)

// reader reads state; a missing key reads as nil, nil.
type reader interface {
	get(key string) ([]byte, error)
}

// overlay is a set of pending writes over a parent reader. Transactions run
// on a child overlay that is merged into its parent only when the whole
// transaction succeeds, so a rejected transaction changes nothing.
type overlay struct {
	parent reader
	writes map[string][]byte // nil value: deleted
}

func newOverlay(parent reader) *overlay {
	return &overlay{parent: parent, writes: make(map[string][]byte)}
}

func (o *overlay) get(key string) ([]byte, error) {
	if v, ok := o.writes[key]; ok {
		return v, nil
	}
	return o.parent.get(key)
}

func (o *overlay) set(key string, val []byte) {
	if val == nil {
		val = []byte{}
	}
	o.writes[key] = val
}

func (o *overlay) del(key string) { o.writes[key] = nil }

// mergeInto copies o's writes into parent.
func (o *overlay) mergeInto(parent *overlay) {
	for k, v := range o.writes {
		parent.writes[k] = v
	}
}

// getObj decodes the value at key into v; found is false when absent.
func getObj(r reader, key string, v any) (found bool, err error) {
	b, err := r.get(key)
	if err != nil || b == nil {
		return false, err
	}
	if err := wire.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("%w: key %q: %v", ErrCorruptState, key, err)
	}
	return true, nil
}

func putObj(o *overlay, key string, v any) error {
	b, err := wire.Marshal(v)
	if err != nil {
		return err
	}
	o.set(key, b)
	return nil
}

// StateVersion is the version of the state layout and app hash
// (docs/formats/state.md). A database written by another version is
// refused rather than read.
const StateVersion = 2

// meta is the store's bookkeeping for the last committed block.
type meta struct {
	Height       int64  `cbor:"height"`
	AppHash      []byte `cbor:"app_hash"`
	Time         int64  `cbor:"time"` // unix seconds of the last block
	StateVersion int    `cbor:"state_version,omitempty"`
}

// DefaultKeepHeights is how many recent heights the store keeps readable
// for queries (Options.KeepHeights).
const DefaultKeepHeights = 128

// store is the committed state: every key and value in a database, for
// durability, and in an authenticated trie whose root is the app hash, for
// reads and proofs. The trie keeps the last few heights readable so that a
// query can be answered at a height whose app hash a light client can
// already verify (it is in the next block's header).
type store struct {
	db       dbm.DB
	meta     meta
	tree     *trie.Tree
	versions map[int64]*trie.Tree
	keep     int
}

func openStore(db dbm.DB, keep int) (*store, error) {
	if keep < 2 {
		keep = DefaultKeepHeights
	}
	s := &store{db: db, tree: &trie.Tree{}, versions: map[int64]*trie.Tree{}, keep: keep}
	b, err := db.Get(metaKey)
	if err != nil {
		return nil, fmt.Errorf("ledger: read state meta: %w", err)
	}
	if b == nil {
		return s, nil
	}
	if err := wire.Unmarshal(b, &s.meta); err != nil {
		return nil, fmt.Errorf("%w: meta: %v", ErrCorruptState, err)
	}
	if s.meta.StateVersion != StateVersion {
		return nil, fmt.Errorf("%w: the ledger state was written in format %d and this validator reads format %d; it cannot continue this chain: start a new one in another home directory", ErrStateVersion, s.meta.StateVersion, StateVersion)
	}
	if err := s.load(); err != nil {
		return nil, err
	}
	if got := s.tree.Hash(); !bytes.Equal(got[:], s.meta.AppHash) {
		return nil, fmt.Errorf("%w: the state in the database hashes to %x, but height %d committed %x", ErrCorruptState, got, s.meta.Height, s.meta.AppHash)
	}
	s.versions[s.meta.Height] = s.tree
	return s, nil
}

// load builds the trie from every key in the database.
func (s *store) load() error {
	it, err := s.db.Iterator(keyPrefix, prefixEnd(keyPrefix))
	if err != nil {
		return err
	}
	defer it.Close()
	const batch = 4096
	w := make(map[string][]byte, batch)
	flush := func() error {
		t, err := s.tree.Apply(w)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrCorruptState, err)
		}
		s.tree = t
		clear(w)
		return nil
	}
	for ; it.Valid(); it.Next() {
		w[string(it.Key()[len(keyPrefix):])] = append([]byte{}, it.Value()...)
		if len(w) == batch {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := it.Error(); err != nil {
		return err
	}
	return flush()
}

func (s *store) get(key string) ([]byte, error) {
	v, ok := s.tree.Get([]byte(key))
	if !ok {
		return nil, nil
	}
	return v, nil
}

// scan calls fn for each committed key with the given prefix, from key
// from on (from "" = the whole prefix), in order, until fn returns false.
func (s *store) scan(prefix, from string, fn func(key string, val []byte) (bool, error)) error {
	return scanTree(s.tree, nil, prefix, from, fn)
}

// at returns the state committed at height h, if it is still kept.
func (s *store) at(h int64) (*trie.Tree, bool) {
	t, ok := s.versions[h]
	return t, ok
}

func prefixEnd(p []byte) []byte {
	end := append([]byte{}, p...)
	for i := len(end) - 1; i >= 0; i-- {
		if end[i] < 0xff {
			end[i]++
			return end[:i+1]
		}
	}
	return nil
}

// apply returns the trie with a block's writes (nil value: delete).
func (s *store) apply(writes map[string][]byte) (*trie.Tree, error) {
	t, err := s.tree.Apply(writes)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCorruptState, err)
	}
	return t, nil
}

// commit writes the block's writes and new meta in one synced batch and
// makes tree (the writes applied, whose root is m.AppHash) the state.
func (s *store) commit(writes map[string][]byte, m meta, tree *trie.Tree) error {
	batch := s.db.NewBatch()
	defer batch.Close()
	for k, v := range writes {
		key := append(append([]byte{}, keyPrefix...), k...)
		var err error
		if v == nil {
			err = batch.Delete(key)
		} else {
			err = batch.Set(key, v)
		}
		if err != nil {
			return fmt.Errorf("ledger: commit: %w", err)
		}
	}
	m.StateVersion = StateVersion
	mb, err := wire.Marshal(m)
	if err != nil {
		return err
	}
	if err := batch.Set(metaKey, mb); err != nil {
		return err
	}
	if err := batch.WriteSync(); err != nil {
		return fmt.Errorf("ledger: commit height %d: %w", m.Height, err)
	}
	s.meta, s.tree = m, tree
	s.versions[m.Height] = tree
	delete(s.versions, m.Height-int64(s.keep))
	return nil
}

// keys used in the state. Numbers are big-endian so scans are in id order.
func u64key(prefix string, ids ...uint64) string {
	var buf bytes.Buffer
	buf.WriteString(prefix)
	for _, id := range ids {
		var b [8]byte
		binary.BigEndian.PutUint64(b[:], id)
		buf.Write(b[:])
	}
	return buf.String()
}

func beUint64(s string) uint64 { return binary.BigEndian.Uint64([]byte(s)) }
