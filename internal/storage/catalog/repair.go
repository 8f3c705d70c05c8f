package catalog

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/zerogrid/zerogrid/internal/storage"
)

// RepairOptions configure Repair.
type RepairOptions struct {
	// Progress, if set, follows the check that Repair starts with.
	Progress func(done, total int64)
}

// ShardRepair is one shard that Repair rebuilt and stored.
type ShardRepair struct {
	File    string `json:"file"`
	Segment string `json:"segment"`
	Index   int    `json:"index"`
	Problem string `json:"problem"`        // what Check found
	From    string `json:"from,omitempty"` // backend it was on; empty if unplaced
	To      string `json:"to"`             // backend it is on now
}

// RepairFailure is a segment or shard that Repair could not restore.
type RepairFailure struct {
	File    string `json:"file"`
	Segment string `json:"segment"`
	Index   int    `json:"index"` // -1: the whole segment
	Err     string `json:"error"`
}

// RepairReport is the result of Repair.
type RepairReport struct {
	Before   *CheckReport    `json:"before"`
	Repaired []ShardRepair   `json:"repaired"`
	Failed   []RepairFailure `json:"failed,omitempty"`
	// Committed: shards moved to other backends, so a new root was
	// committed (Seq) with the updated references.
	Committed bool   `json:"committed"`
	Seq       uint64 `json:"seq"`
	// RootsWritten lists the backends that got the current root again.
	RootsWritten []string `json:"roots_written,omitempty"`
}

// OK reports whether everything Check found was repaired.
func (r *RepairReport) OK() bool { return len(r.Failed) == 0 }

// Repair checks the store (as Check does) and, for every segment with
// missing, corrupt, unreachable or unplaced shards and at least k intact
// ones, rebuilds the bad shards byte for byte (storage.Decoder.Rebuild)
// and stores each on a backend placement allows: its original backend if
// that answers, else one holding no other shard of the segment, never
// more than MaxPerDomain(k, m) shards of a segment per failure domain.
// When a shard moves, the references change and Repair commits a new root
// (and re-encodes the catalog over the backends that answer). Finally it
// writes the current root to every backend that lacks it.
//
// Repair is idempotent and safe to interrupt: a shard is put before any
// reference names it, and a moved shard's old copy is left for GC. It
// commits like every writer, under the writer lock and on top of the
// newest catalog, so it may run beside other writers (a mount): a file
// replaced or removed meanwhile keeps its new references, and the shards
// rebuilt for its old ones are garbage for GC.
func (s *Store) Repair(ctx context.Context, opts RepairOptions) (*RepairReport, error) {
	in, err := s.inspect(ctx, CheckOptions{Progress: opts.Progress})
	if err != nil {
		return nil, err
	}
	rep := &RepairReport{Before: in.report, Repaired: []ShardRepair{}, Seq: in.seq}
	usable := func(b storage.Backend) bool { return !in.down[b.ID()] }
	changed := false
	moved := map[string][]storage.SegmentRef{} // file → its repaired references
	for _, e := range in.cat.List("") {
		if ne, ok := s.repairFile(ctx, e.Name, e.Segments, in, usable, rep); ok {
			moved[e.Name] = ne
			changed = true
		}
	}
	// The catalog is re-encoded by any commit: when its shards must move,
	// committing is the repair; otherwise they are rebuilt in place.
	if catalogNeedsMove(in) {
		changed = true
		for _, st := range in.segments[CatalogName] {
			for _, p := range st.problems {
				rep.Repaired = append(rep.Repaired, ShardRepair{File: CatalogName, Segment: p.Segment, Index: p.Index, Problem: p.Problem, From: p.Backend, To: "(catalog re-encoded)"})
			}
		}
	} else if _, ok := s.repairFile(ctx, CatalogName, in.rootRefs, in, usable, rep); ok {
		changed = true
	}
	if err := ctx.Err(); err != nil {
		return rep, err
	}
	if changed {
		if err := s.commitRepaired(ctx, moved, in.down); err != nil {
			return rep, fmt.Errorf("repair: shards were rebuilt but the new references could not be committed (run repair again): %w", err)
		}
		rep.Committed, rep.Seq = true, s.Seq()
		return rep, nil
	}
	s.rewriteRoots(ctx, in, rep)
	return rep, nil
}

// repairFile repairs the segments of one file; it returns the updated
// references and whether any changed.
func (s *Store) repairFile(ctx context.Context, name string, refs []storage.SegmentRef, in *inspection, usable func(storage.Backend) bool, rep *RepairReport) ([]storage.SegmentRef, bool) {
	out := make([]storage.SegmentRef, len(refs))
	copy(out, refs)
	changed := false
	for i, st := range in.segments[name] {
		if len(st.problems) == 0 || ctx.Err() != nil {
			continue
		}
		if st.good < st.ref.K {
			rep.Failed = append(rep.Failed, RepairFailure{File: name, Segment: st.ref.ID.String(), Index: -1,
				Err: fmt.Sprintf("%d intact shards, need %d: the segment cannot be rebuilt (bring its backends back and run repair again)", st.good, st.ref.K)})
			continue
		}
		ref, moved := s.repairSegment(ctx, name, st, in, usable, rep)
		if moved {
			out[i], changed = ref, true
		}
	}
	return out, changed
}

// repairSegment rebuilds the bad shards of one segment and stores them.
func (s *Store) repairSegment(ctx context.Context, name string, st segmentState, in *inspection, usable func(storage.Backend) bool, rep *RepairReport) (storage.SegmentRef, bool) {
	ref := st.ref
	indices := make([]int, len(st.problems))
	for i, p := range st.problems {
		indices[i] = p.Index
	}
	fail := func(idx int, err error) {
		rep.Failed = append(rep.Failed, RepairFailure{File: name, Segment: ref.ID.String(), Index: idx, Err: err.Error()})
	}
	// Rebuild from the shards check found intact only: known-bad ones are
	// not fetched again.
	from := ref
	from.Shards = nil
	for _, loc := range ref.Shards {
		if !slices.Contains(indices, loc.Index) {
			from.Shards = append(from.Shards, loc)
		}
	}
	rebuilt, _, err := s.dec.Rebuild(ctx, from, indices)
	if err != nil {
		fail(-1, fmt.Errorf("rebuild: %w", err))
		return ref, false
	}
	moved := false
	for i, r := range rebuilt {
		p := st.problems[i]
		to, err := s.placeRebuilt(ctx, ref, r, in, usable)
		if err != nil {
			fail(r.Index, err)
			continue
		}
		if to != p.Backend || !hasShard(ref, r.Index, r.Digest) {
			if ref, err = storage.WithShard(ref, r.Index, to, r.Digest); err != nil {
				fail(r.Index, err)
				continue
			}
			moved = true
		}
		rep.Repaired = append(rep.Repaired, ShardRepair{File: name, Segment: ref.ID.String(), Index: r.Index, Problem: p.Problem, From: p.Backend, To: to})
		s.log.Info("shard repaired", "file", name, "segment", ref.ID.String(), "shard", r.Index, "from", p.Backend, "to", to)
	}
	return ref, moved
}

// placeRebuilt puts a rebuilt shard on the first backend placement allows
// that takes it, and returns that backend's id. A backend that fails as
// unavailable is marked down for the rest of the repair.
func (s *Store) placeRebuilt(ctx context.Context, ref storage.SegmentRef, r storage.Rebuilt, in *inspection, usable func(storage.Backend) bool) (string, error) {
	var errs []error
	for _, b := range storage.ReplacementTargets(ref, r.Index, s.backends, usable) {
		err := b.Put(ctx, storage.ShardName(ref.ID, r.Index), r.Shard)
		if err == nil {
			return b.ID(), nil
		}
		if errors.Is(err, storage.ErrUnavailable) {
			in.down[b.ID()] = true
		}
		errs = append(errs, fmt.Errorf("backend %q: %w", b.ID(), err))
	}
	if len(errs) == 0 {
		return "", fmt.Errorf("%w: no reachable backend can take shard %d without a second shard of the segment on it or more than %d on one failure domain: add a backend in another domain",
			storage.ErrPlacement, r.Index, storage.MaxPerDomain(ref.K, ref.M))
	}
	return "", fmt.Errorf("no backend took shard %d: %w", r.Index, errors.Join(errs...))
}

func hasShard(ref storage.SegmentRef, index int, digest [32]byte) bool {
	for _, s := range ref.Shards {
		if s.Index == index {
			return s.Digest == digest
		}
	}
	return false
}

// commitRepaired commits the repaired references onto the newest
// catalog, under the writer lock: a file whose segments are no longer the
// ones repaired (replaced or removed meanwhile) is left as it is. Any
// commit re-encodes the catalog itself; when backends are down, it is
// encoded over the others only (with the widest coding they allow), so the
// new catalog is not born degraded.
func (s *Store) commitRepaired(ctx context.Context, moved map[string][]storage.SegmentRef, down map[string]bool) error {
	var meta *storage.Encoder
	if len(down) > 0 {
		var up []storage.Backend
		for _, b := range s.backends {
			if !down[b.ID()] {
				up = append(up, b)
			}
		}
		if mp, ok := catalogParams(up, s.data.Params().K); ok {
			if enc, err := storage.NewEncoder(storage.Config{Owner: s.owner, Params: mp, Backends: up, Rand: s.rand, Logger: s.log}); err == nil {
				meta = enc
			}
		}
	}
	_, err := s.updateWith(ctx, meta, func(cur *Catalog) (*Catalog, error) {
		out := cur
		for name, refs := range moved {
			e, ok := cur.Lookup(name)
			if !ok || !sameSegments(e.Segments, refs) {
				continue
			}
			e.Segments = refs
			out, _ = out.with(e)
		}
		return out, nil
	})
	return err
}

// sameSegments reports whether two reference lists name the same segments
// in the same order (their shard locations may differ).
func sameSegments(a, b []storage.SegmentRef) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i].ID != b[i].ID {
			return false
		}
	}
	return true
}

// rewriteRoots puts the current root on every reachable backend that
// lacks a valid copy, from a copy that verifies.
func (s *Store) rewriteRoots(ctx context.Context, in *inspection, rep *RepairReport) {
	if len(in.report.RootMissing) == 0 {
		return
	}
	var blob []byte
	for _, b := range s.backends {
		if !in.rootHave[b.ID()] {
			continue
		}
		raw, err := b.Get(ctx, rootName(in.seq), 0, -1)
		if err == nil {
			if _, err = openRoot(s.keys, in.seq, raw); err == nil {
				blob = raw
				break
			}
		}
	}
	if blob == nil {
		rep.Failed = append(rep.Failed, RepairFailure{File: CatalogName, Index: -1, Err: fmt.Sprintf("no readable copy of root %d left to copy", in.seq)})
		return
	}
	for _, id := range in.report.RootMissing {
		if err := s.byID[id].Put(ctx, rootName(in.seq), blob); err != nil {
			rep.Failed = append(rep.Failed, RepairFailure{File: CatalogName, Index: -1, Err: fmt.Sprintf("root %d on backend %q: %v", in.seq, id, err)})
			continue
		}
		rep.RootsWritten = append(rep.RootsWritten, id)
	}
}

// catalogNeedsMove reports whether a shard of the catalog is unplaced or on
// a backend that does not answer.
func catalogNeedsMove(in *inspection) bool {
	for _, st := range in.segments[CatalogName] {
		for _, p := range st.problems {
			if p.Problem == ProblemUnplaced || p.Problem == ProblemUnreachable {
				return true
			}
		}
	}
	return false
}
