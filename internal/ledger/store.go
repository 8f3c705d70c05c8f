package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sort"

	dbm "github.com/cometbft/cometbft-db"

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

// meta is the store's bookkeeping for the last committed block.
type meta struct {
	Height  int64  `cbor:"height"`
	AppHash []byte `cbor:"app_hash"`
	Time    int64  `cbor:"time"` // unix seconds of the last block
}

// store is the committed state in a database.
type store struct {
	db   dbm.DB
	meta meta
}

func openStore(db dbm.DB) (*store, error) {
	s := &store{db: db}
	b, err := db.Get(metaKey)
	if err != nil {
		return nil, fmt.Errorf("ledger: read state meta: %w", err)
	}
	if b != nil {
		if err := wire.Unmarshal(b, &s.meta); err != nil {
			return nil, fmt.Errorf("%w: meta: %v", ErrCorruptState, err)
		}
	}
	return s, nil
}

func (s *store) get(key string) ([]byte, error) {
	v, err := s.db.Get(append(append([]byte{}, keyPrefix...), key...))
	if err != nil {
		return nil, fmt.Errorf("ledger: read %q: %w", key, err)
	}
	return v, nil
}

// scan calls fn for each committed key with the given prefix, from key
// from on (from "" = the whole prefix), in order, until fn returns false.
func (s *store) scan(prefix, from string, fn func(key string, val []byte) (bool, error)) error {
	p := append(append([]byte{}, keyPrefix...), prefix...)
	start := p
	if from > prefix {
		start = append(append([]byte{}, keyPrefix...), from...)
	}
	it, err := s.db.Iterator(start, prefixEnd(p))
	if err != nil {
		return err
	}
	defer it.Close()
	for ; it.Valid(); it.Next() {
		more, err := fn(string(it.Key()[len(keyPrefix):]), it.Value())
		if err != nil || !more {
			return err
		}
	}
	return it.Error()
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

// nextAppHash chains the previous app hash with the block's sorted write
// set: SHA-256("zerogrid\0app-hash\0" || prev || height || for each write
// in key order: len(key) key flag len(val) val). Two states agree on it only
// if they came from the same writes.
func nextAppHash(prev []byte, height int64, writes map[string][]byte) []byte {
	keys := make([]string, 0, len(writes))
	for k := range writes {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	h.Write([]byte("zerogrid\x00app-hash\x00"))
	h.Write(prev)
	var n [8]byte
	put := func(x uint64) { binary.BigEndian.PutUint64(n[:], x); h.Write(n[:]) }
	put(uint64(height))
	for _, k := range keys {
		put(uint64(len(k)))
		h.Write([]byte(k))
		v := writes[k]
		if v == nil {
			h.Write([]byte{0})
			continue
		}
		h.Write([]byte{1})
		put(uint64(len(v)))
		h.Write(v)
	}
	return h.Sum(nil)
}

// commit writes the block's writes and new meta in one synced batch.
func (s *store) commit(writes map[string][]byte, m meta) error {
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
	s.meta = m
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
