package catalog

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"

	"github.com/zerogrid/zerogrid/internal/storage"
)

// Options configure a Store. Backends come in through here, so tests can
// wrap them (backendtest.Faulty).
type Options struct {
	Params   storage.Params    // the data's erasure coding and segment size
	Backends []storage.Backend // every backend of the store
	Logger   *slog.Logger      // nil discards
	Rand     io.Reader         // nil means crypto/rand.Reader
}

// Store is an open store: its keys, encoders and the catalog of the root it
// read. It is not safe for concurrent use, and assumes it is the only
// writer of the backends (see the package doc).
type Store struct {
	backends []storage.Backend
	byID     map[string]storage.Backend
	keys     *keys
	owner    *storage.OwnerKey // binds every segment key to the mnemonic
	log      *slog.Logger
	rand     io.Reader
	data     *storage.Encoder
	meta     *storage.Encoder
	dec      *storage.Decoder

	seq      uint64               // seq of the current root; 0 before init
	rootRefs []storage.SegmentRef // the current catalog's segments
	cat      *Catalog
	lk       lockState // writer lock and the mutex guarding the three above (lock.go)
	// metaOverride, set under lk.mu for one commit, encodes the catalog
	// instead of meta (repair, when backends are down).
	metaOverride *storage.Encoder
	holds        holds // segments open files still read (hold.go)
}

func newStore(opts Options, secret []byte) (*Store, error) {
	s := &Store{backends: opts.Backends, byID: map[string]storage.Backend{}, log: opts.Logger, rand: opts.Rand, cat: &Catalog{}}
	if s.log == nil {
		s.log = slog.New(slog.DiscardHandler)
	}
	if s.rand == nil {
		s.rand = rand.Reader
	}
	for _, b := range opts.Backends {
		s.byID[b.ID()] = b
	}
	var err error
	if s.owner, err = storage.NewOwnerKey(secret); err != nil {
		return nil, err
	}
	if s.data, err = storage.NewEncoder(storage.Config{Owner: s.owner, Params: opts.Params, Backends: opts.Backends, Rand: s.rand, Logger: s.log}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	mp, ok := catalogParams(opts.Backends, opts.Params.K)
	if !ok {
		return nil, fmt.Errorf("%w: the backends' failure domains leave no room for the catalog's 2+1 or wider coding", ErrConfig)
	}
	if s.meta, err = storage.NewEncoder(storage.Config{Owner: s.owner, Params: mp, Backends: opts.Backends, Rand: s.rand, Logger: s.log}); err != nil {
		return nil, fmt.Errorf("%w: catalog coding: %w", ErrConfig, err)
	}
	if s.dec, err = storage.NewDecoder(storage.DecoderConfig{Owner: s.owner, Backends: opts.Backends, Logger: s.log}); err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	if s.keys, err = deriveKeys(secret); err != nil {
		return nil, err
	}
	return s, nil
}

// Init creates a store on the backends: an empty catalog and root 1. It
// refuses, writing nothing, when a root already exists (ErrExists) or when
// the backends hold roots that this secret cannot verify (ErrForeignStore).
func Init(ctx context.Context, opts Options, secret []byte) (*Store, error) {
	s, err := newStore(opts, secret)
	if err != nil {
		return nil, err
	}
	scan, err := s.scanRoots(ctx)
	if err != nil {
		return nil, err
	}
	if _, _, found, err := s.latest(ctx, scan); err != nil || found {
		if err == nil {
			err = fmt.Errorf("%w (root seq %d)", ErrExists, s.seq)
		}
		return nil, err
	}
	if scan.sawRoots {
		return nil, ErrForeignStore
	}
	if _, err := s.commit(ctx, &Catalog{}); err != nil {
		return nil, err
	}
	return s, nil
}

// Open reads the newest valid root and its catalog. ErrNoRoot means the
// secret is wrong or the store was never initialised.
func Open(ctx context.Context, opts Options, secret []byte) (*Store, error) {
	s, err := newStore(opts, secret)
	if err != nil {
		return nil, err
	}
	scan, err := s.scanRoots(ctx)
	if err != nil {
		return nil, err
	}
	body, cat, found, err := s.latest(ctx, scan)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, ErrNoRoot
	}
	s.seq, s.rootRefs, s.cat = body.Seq, body.Catalog, cat
	if scan.reachable <= len(s.backends)/2 {
		s.log.Warn("fewer than a majority of backends answered: the root read may be stale", "reachable", scan.reachable, "backends", len(s.backends))
	}
	return s, nil
}

// Close forgets the keys.
func (s *Store) Close() { s.keys.wipe(); s.owner.Wipe() }

// Seq is the sequence number of the root the store is at.
func (s *Store) Seq() uint64 { s.lk.mu.Lock(); defer s.lk.mu.Unlock(); return s.seq }

// Lookup returns the entry of name.
func (s *Store) Lookup(name string) (Entry, bool) {
	s.lk.mu.Lock()
	defer s.lk.mu.Unlock()
	return s.cat.Lookup(name)
}

// List returns the entries whose name starts with prefix, sorted by name.
func (s *Store) List(prefix string) []Entry {
	s.lk.mu.Lock()
	defer s.lk.mu.Unlock()
	return s.cat.List(prefix)
}

// commit stores cat as the catalog of root seq+1 and writes that root to
// every backend. It fails unless a majority took the root; visible reports
// whether the new root may nonetheless be readable somewhere (it could not
// be removed from every backend that took it), in which case the caller
// must keep everything it references.
func (s *Store) commit(ctx context.Context, cat *Catalog) (visible bool, err error) {
	seq := s.seq + 1
	plain, err := encodeCatalog(cat)
	if err != nil {
		return false, err
	}
	sealed, err := sealCatalog(s.keys, s.rand, seq, plain)
	if err != nil {
		return false, err
	}
	var refs []storage.SegmentRef
	meta := s.meta
	if s.metaOverride != nil {
		meta = s.metaOverride
	}
	_, err = meta.Encode(ctx, bytes.NewReader(sealed), func(w storage.Written) error {
		refs = append(refs, w.Ref)
		return nil
	})
	if err != nil {
		s.deleteSegments(ctx, refs)
		return false, fmt.Errorf("store the catalog: %w", err)
	}
	blob, err := sealRoot(s.keys, s.rand, rootBody{Seq: seq, Catalog: refs})
	if err != nil {
		s.deleteSegments(ctx, refs)
		return false, err
	}
	if landed, err := s.putRoots(ctx, seq, blob); err != nil {
		if s.unputRoot(ctx, seq, landed) {
			s.deleteSegments(ctx, refs)
			return false, err
		}
		return true, err
	}
	old := s.rootRefs
	s.seq, s.rootRefs, s.cat = seq, refs, cat
	s.deleteOldRoots(ctx, seq)
	s.deleteSegments(ctx, old)
	return true, nil
}

// Refresh reads the newest root if another writer (another process or
// machine) committed past the root this Store is at, and reports whether
// the catalog changed. It holds the Store's lock only when there is
// something to read.
func (s *Store) Refresh(ctx context.Context) (bool, error) {
	scan, err := s.scanRoots(ctx)
	if err != nil {
		return false, err
	}
	newest := uint64(0)
	for seq := range scan.holders {
		newest = max(newest, seq)
	}
	if newest <= s.Seq() {
		return false, nil
	}
	s.lk.mu.Lock()
	defer s.lk.mu.Unlock()
	before := s.seq
	if err := s.refresh(ctx); err != nil {
		return false, err
	}
	return s.seq != before, nil
}
