package catalog

import (
	"bytes"
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zerogrid/zerogrid/internal/storage"
)

// cleanupTimeout bounds best-effort deletions, which run even when the
// caller's context is done.
const cleanupTimeout = 30 * time.Second

// rootScan is what listing "root-" on every backend found.
type rootScan struct {
	reachable int                          // backends whose List succeeded
	sawRoots  bool                         // any root object at all
	holders   map[uint64][]storage.Backend // seq → backends listing it
}

// scanRoots lists the root objects of every backend in parallel. It fails
// only when no backend answers.
func (s *Store) scanRoots(ctx context.Context) (rootScan, error) {
	scan := rootScan{holders: map[uint64][]storage.Backend{}}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make([]error, len(s.backends))
	for i, b := range s.backends {
		wg.Go(func() {
			var seqs []uint64
			errs[i] = b.List(ctx, rootPrefix, func(info storage.Info) error {
				if seq, ok := parseRootName(info.Name); ok {
					seqs = append(seqs, seq)
				}
				return nil
			})
			mu.Lock()
			defer mu.Unlock()
			if errs[i] != nil {
				s.log.Warn("list root records", "backend", b.ID(), "err", errs[i])
				return
			}
			scan.reachable++
			for _, seq := range seqs {
				scan.sawRoots = true
				scan.holders[seq] = append(scan.holders[seq], b)
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return scan, err
	}
	if scan.reachable == 0 {
		return scan, fmt.Errorf("no backend answered: %w", joinBackendErrs(s.backends, errs))
	}
	return scan, nil
}

// latest finds the highest seq with a root that verifies and loads its
// catalog. A root that does not verify is ignored. A verified root whose
// catalog cannot be read is an error, not a reason to fall back to an older
// root: that would silently roll the store back.
func (s *Store) latest(ctx context.Context, scan rootScan) (rootBody, *Catalog, bool, error) {
	seqs := make([]uint64, 0, len(scan.holders))
	for seq := range scan.holders {
		seqs = append(seqs, seq)
	}
	slices.Sort(seqs)
	slices.Reverse(seqs)
	for _, seq := range seqs {
		for _, b := range scan.holders[seq] {
			raw, err := b.Get(ctx, rootName(seq), 0, -1)
			if err != nil {
				s.log.Warn("read root record", "backend", b.ID(), "seq", seq, "err", err)
				continue
			}
			body, err := openRoot(s.keys, seq, raw)
			if err != nil {
				s.log.Debug("ignore root record", "backend", b.ID(), "seq", seq, "err", err)
				continue
			}
			cat, err := s.readCatalog(ctx, body)
			if err != nil {
				return rootBody{}, nil, false, fmt.Errorf("root %d: %w", seq, err)
			}
			s.seq = seq
			return body, cat, true, nil
		}
		if err := ctx.Err(); err != nil {
			return rootBody{}, nil, false, err
		}
	}
	return rootBody{}, nil, false, nil
}

func (s *Store) readCatalog(ctx context.Context, body rootBody) (*Catalog, error) {
	var buf bytes.Buffer
	if _, err := s.dec.Decode(ctx, &buf, body.Catalog); err != nil {
		return nil, fmt.Errorf("read the catalog: %w", err)
	}
	return openCatalog(s.keys, body.Seq, buf.Bytes())
}

// putRoots writes root seq to every backend in parallel and succeeds when
// a majority took it. It returns the backends that took it.
func (s *Store) putRoots(ctx context.Context, seq uint64, blob []byte) ([]storage.Backend, error) {
	errs := make([]error, len(s.backends))
	var wg sync.WaitGroup
	for i, b := range s.backends {
		wg.Go(func() { errs[i] = b.Put(ctx, rootName(seq), blob) })
	}
	wg.Wait()
	var landed []storage.Backend
	for i, err := range errs {
		if err == nil {
			landed = append(landed, s.backends[i])
		} else {
			s.log.Warn("root record not stored", "backend", s.backends[i].ID(), "seq", seq, "err", err)
		}
	}
	if need := len(s.backends)/2 + 1; len(landed) < need {
		return landed, fmt.Errorf("%w: %d of %d backends, need %d: %w", ErrQuorum, len(landed), len(s.backends), need, joinBackendErrs(s.backends, errs))
	}
	return landed, nil
}

// unputRoot removes root seq from the backends that took it, after a failed
// commit; it reports whether it is gone from all of them.
func (s *Store) unputRoot(ctx context.Context, seq uint64, landed []storage.Backend) bool {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	gone := true
	for _, b := range landed {
		if err := b.Delete(ctx, rootName(seq)); err != nil {
			s.log.Warn("remove root record of a failed commit", "backend", b.ID(), "seq", seq, "err", err)
			gone = false
		}
	}
	return gone
}

// deleteOldRoots removes roots below seq from every backend, best effort.
func (s *Store) deleteOldRoots(ctx context.Context, seq uint64) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	for _, b := range s.backends {
		var old []string
		_ = b.List(ctx, rootPrefix, func(info storage.Info) error {
			if n, ok := parseRootName(info.Name); ok && n < seq {
				old = append(old, info.Name)
			}
			return nil
		})
		for _, name := range old {
			if err := b.Delete(ctx, name); err != nil {
				s.log.Warn("delete old root record", "backend", b.ID(), "name", name, "err", err)
			}
		}
	}
}

// deleteSegments removes the shards of refs, best effort: a shard left
// behind is garbage that no reference names.
func (s *Store) deleteSegments(ctx context.Context, refs []storage.SegmentRef) {
	s.deleteNow(ctx, s.holds.unheld(refs))
}

// deleteNow deletes the shards of refs, held or not (hold.go).
func (s *Store) deleteNow(ctx context.Context, refs []storage.SegmentRef) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	for _, ref := range refs {
		for _, loc := range ref.Shards {
			b := s.byID[loc.Backend]
			if b == nil {
				continue
			}
			if err := b.Delete(ctx, storage.ShardName(ref.ID, loc.Index)); err != nil {
				s.log.Warn("delete shard", "segment", ref.ID.String(), "shard", loc.Index, "backend", loc.Backend, "err", err)
			}
		}
	}
}

func joinBackendErrs(bs []storage.Backend, errs []error) error {
	var verbs []string
	var wrapped []any
	for i, err := range errs {
		if err != nil {
			verbs = append(verbs, "%w")
			wrapped = append(wrapped, fmt.Errorf("backend %q: %w", bs[i].ID(), err))
		}
	}
	return fmt.Errorf(strings.Join(verbs, "; "), wrapped...)
}
