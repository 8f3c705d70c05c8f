package catalog

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"sort"
	"sync"

	"github.com/zerogrid/zerogrid/internal/storage"
)

// Health of a file (or of the catalog): every shard of every segment
// intact, some missing or bad but every segment still readable, or some
// segment with fewer than k intact shards.
type Health string

// The values of Health.
const (
	Healthy  Health = "healthy"
	Degraded Health = "degraded"
	Lost     Health = "lost"
)

// Kinds of shard problem that Check reports.
const (
	// ProblemMissing: the backend answered and has no such shard.
	ProblemMissing = "missing"
	// ProblemCorrupt: the shard fails its block or header hashes, or is
	// not the shard the reference pins.
	ProblemCorrupt = "corrupt"
	// ProblemUnreachable: the backend did not answer (down, or no longer
	// configured).
	ProblemUnreachable = "unreachable"
	// ProblemUnplaced: the shard was never stored (its backend failed
	// during the put); the reference names no backend for it.
	ProblemUnplaced = "unplaced"
)

// CatalogName is the name under which Check reports the catalog's own
// segments.
const CatalogName = "(catalog)"

// ShardProblem is one shard that is not intact.
type ShardProblem struct {
	Segment string `json:"segment"`
	Index   int    `json:"index"`
	Backend string `json:"backend,omitempty"` // empty when unplaced
	Problem string `json:"problem"`
	Err     string `json:"error,omitempty"`
}

func (p ShardProblem) String() string {
	s := fmt.Sprintf("shard %d of segment %s", p.Index, p.Segment)
	if p.Backend != "" {
		s += fmt.Sprintf(" on backend %q", p.Backend)
	}
	s += ": " + p.Problem
	if p.Err != "" {
		s += " (" + p.Err + ")"
	}
	return s
}

// FileHealth is what Check found for one file.
type FileHealth struct {
	Name     string         `json:"name"`
	Size     int64          `json:"size"`
	Segments int            `json:"segments"`
	Health   Health         `json:"health"`
	Problems []ShardProblem `json:"problems,omitempty"`
	// DecodeErr is set by a deep check when a segment with k intact
	// shards still did not decrypt (then Health is Lost).
	DecodeErr string `json:"decode_error,omitempty"`
}

// CheckReport is the result of Check.
type CheckReport struct {
	Seq     uint64       `json:"seq"` // root checked
	Catalog FileHealth   `json:"catalog"`
	Files   []FileHealth `json:"files"`
	// RootMissing lists the reachable backends that lack a valid copy of
	// the current root record.
	RootMissing []string `json:"root_missing,omitempty"`
	// Down lists the backends that failed with ErrUnavailable.
	Down     []string `json:"down,omitempty"`
	Healthy  int      `json:"healthy"`
	Degraded int      `json:"degraded"`
	Lost     int      `json:"lost"`
}

// OK reports whether everything, catalog and roots included, is intact.
func (r *CheckReport) OK() bool {
	return r.Degraded == 0 && r.Lost == 0 && r.Catalog.Health == Healthy && len(r.RootMissing) == 0
}

// CheckOptions configure Check.
type CheckOptions struct {
	// Deep also decrypts every segment (a full read), which proves the
	// keys and the plaintext and not only the shards' hashes.
	Deep bool
	// Progress, if set, is called with the plaintext bytes checked so
	// far and the total, after every segment.
	Progress func(done, total int64)
}

// segmentState is what checking one segment found; repair works from it.
type segmentState struct {
	ref      storage.SegmentRef
	good     int
	problems []ShardProblem
}

// inspection is the full result of examining the store, for Check and
// Repair.
type inspection struct {
	report *CheckReport
	// segments, by file name (CatalogName for the catalog), in order.
	segments map[string][]segmentState
	down     map[string]bool
	rootHave map[string]bool // backend id → holds a valid current root
	// The catalog inspected: a snapshot taken at the start, so writers of
	// the same Store (a mount) may commit meanwhile.
	cat      *Catalog
	rootRefs []storage.SegmentRef
	seq      uint64
}

// Check reads every shard of every segment of every file and of the
// catalog, and verifies each against its reference (block hashes, header
// hash, pinned digest, header fields), and checks that every backend holds
// the current root. It reports per file; it changes nothing. An error means
// the check itself could not run (ctx ended); what it found is in the
// report.
func (s *Store) Check(ctx context.Context, opts CheckOptions) (*CheckReport, error) {
	in, err := s.inspect(ctx, opts)
	if err != nil {
		return nil, err
	}
	return in.report, nil
}

func (s *Store) inspect(ctx context.Context, opts CheckOptions) (*inspection, error) {
	s.lk.mu.Lock()
	cat, rootRefs, seq := s.cat, s.rootRefs, s.seq
	s.lk.mu.Unlock()
	in := &inspection{
		cat: cat, rootRefs: rootRefs, seq: seq,
		report:   &CheckReport{Seq: seq, Files: []FileHealth{}},
		segments: map[string][]segmentState{},
		down:     map[string]bool{},
		rootHave: map[string]bool{},
	}
	var mu sync.Mutex
	markDown := func(id string) {
		mu.Lock()
		in.down[id] = true
		mu.Unlock()
	}
	isDown := func(id string) bool {
		mu.Lock()
		defer mu.Unlock()
		return in.down[id]
	}
	s.checkRoots(ctx, in, markDown)
	entries := in.cat.List("")
	var total, done int64
	for _, ref := range in.rootRefs {
		total += int64(ref.PlainLen)
	}
	for _, e := range entries {
		total += e.Size
	}
	file := func(name string, size int64, refs []storage.SegmentRef) (FileHealth, error) {
		fh := FileHealth{Name: name, Size: size, Segments: len(refs), Health: Healthy}
		for _, ref := range refs {
			st := s.checkSegment(ctx, ref, markDown, isDown)
			if err := ctx.Err(); err != nil {
				return fh, err
			}
			in.segments[name] = append(in.segments[name], st)
			fh.Problems = append(fh.Problems, st.problems...)
			switch {
			case st.good < ref.K:
				fh.Health = Lost
			case len(st.problems) > 0 && fh.Health == Healthy:
				fh.Health = Degraded
			}
			if opts.Deep && st.good >= ref.K && fh.DecodeErr == "" {
				if _, err := s.dec.DecodeSegment(ctx, ref, nil); err != nil {
					if ctx.Err() != nil {
						return fh, ctx.Err()
					}
					fh.Health, fh.DecodeErr = Lost, err.Error()
				}
			}
			done += int64(ref.PlainLen)
			if opts.Progress != nil {
				opts.Progress(done, total)
			}
		}
		return fh, nil
	}
	var err error
	if in.report.Catalog, err = file(CatalogName, 0, in.rootRefs); err != nil {
		return nil, err
	}
	for _, e := range entries {
		fh, err := file(e.Name, e.Size, e.Segments)
		if err != nil {
			return nil, err
		}
		in.report.Files = append(in.report.Files, fh)
		switch fh.Health {
		case Healthy:
			in.report.Healthy++
		case Degraded:
			in.report.Degraded++
		default:
			in.report.Lost++
		}
	}
	for id := range in.down {
		in.report.Down = append(in.report.Down, id)
	}
	sort.Strings(in.report.Down)
	return in, nil
}

// checkRoots records which backends hold a copy of the current root that
// verifies.
func (s *Store) checkRoots(ctx context.Context, in *inspection, markDown func(string)) {
	name := rootName(in.seq)
	have := make([]bool, len(s.backends))
	var wg sync.WaitGroup
	for i, b := range s.backends {
		wg.Go(func() {
			raw, err := b.Get(ctx, name, 0, -1)
			if err == nil {
				_, err = openRoot(s.keys, in.seq, raw)
			}
			have[i] = err == nil
			switch {
			case errors.Is(err, storage.ErrUnavailable):
				markDown(b.ID())
			case err != nil && !errors.Is(err, storage.ErrNotFound):
				s.log.Warn("current root record unreadable or invalid", "backend", b.ID(), "seq", in.seq, "err", err)
			}
		})
	}
	wg.Wait()
	for i, b := range s.backends {
		in.rootHave[b.ID()] = have[i]
		if !have[i] && !in.down[b.ID()] {
			in.report.RootMissing = append(in.report.RootMissing, b.ID())
		}
	}
}

// checkSegment fetches and verifies every shard of ref in parallel.
func (s *Store) checkSegment(ctx context.Context, ref storage.SegmentRef, markDown func(string), isDown func(string) bool) segmentState {
	st := segmentState{ref: ref}
	errs := make([]error, len(ref.Shards))
	var wg sync.WaitGroup
	for i, loc := range ref.Shards {
		if isDown(loc.Backend) {
			// Known down: do not wait for it once per shard.
			errs[i] = fmt.Errorf("%w: backend %q did not answer earlier in this check", storage.ErrUnavailable, loc.Backend)
			continue
		}
		wg.Go(func() { errs[i] = s.checkShard(ctx, ref, loc) })
	}
	wg.Wait()
	for i, loc := range ref.Shards {
		err := errs[i]
		if err == nil {
			st.good++
			continue
		}
		p := ShardProblem{Segment: ref.ID.String(), Index: loc.Index, Backend: loc.Backend, Err: err.Error()}
		switch {
		case errors.Is(err, storage.ErrNotFound):
			p.Problem, p.Err = ProblemMissing, ""
		case errors.Is(err, storage.ErrUnavailable):
			p.Problem = ProblemUnreachable
			markDown(loc.Backend)
		default:
			p.Problem = ProblemCorrupt
		}
		st.problems = append(st.problems, p)
	}
	for _, i := range ref.Missing() {
		st.problems = append(st.problems, ShardProblem{Segment: ref.ID.String(), Index: i, Problem: ProblemUnplaced})
	}
	sort.Slice(st.problems, func(i, j int) bool { return st.problems[i].Index < st.problems[j].Index })
	return st
}

// checkShard reads one whole shard and checks it as a reader would.
func (s *Store) checkShard(ctx context.Context, ref storage.SegmentRef, loc storage.ShardLoc) error {
	b := s.byID[loc.Backend]
	if b == nil {
		return fmt.Errorf("%w: backend %q is not in the configuration", storage.ErrUnavailable, loc.Backend)
	}
	raw, err := b.Get(ctx, storage.ShardName(ref.ID, loc.Index), 0, -1)
	if err != nil {
		return err
	}
	h, _, sum, err := storage.VerifyShard(raw)
	switch {
	case err != nil:
		return err
	case subtle.ConstantTimeCompare(sum[:], loc.Digest[:]) != 1:
		return fmt.Errorf("%w: header hash differs from the one the reference records", storage.ErrBadShard)
	case h.Segment != ref.ID || h.Index != loc.Index || h.K != ref.K || h.M != ref.M || h.PlainLen != ref.PlainLen:
		return fmt.Errorf("%w: %s does not match the reference", storage.ErrBadShard, h)
	}
	return nil
}

// WriteText prints the report for a person: one line per file that is not
// healthy, with its shard problems, then a summary.
func (r *CheckReport) WriteText(w io.Writer) {
	for _, f := range append([]FileHealth{r.Catalog}, r.Files...) {
		if f.Health == Healthy {
			continue
		}
		fmt.Fprintf(w, "%s: %s\n", f.Name, f.Health)
		for _, p := range f.Problems {
			fmt.Fprintf(w, "  %s\n", p)
		}
		if f.DecodeErr != "" {
			fmt.Fprintf(w, "  does not decode: %s\n", f.DecodeErr)
		}
	}
	if len(r.RootMissing) > 0 {
		fmt.Fprintf(w, "root %d missing or invalid on backends %v\n", r.Seq, r.RootMissing)
	}
	if len(r.Down) > 0 {
		fmt.Fprintf(w, "backends down: %v\n", r.Down)
	}
	fmt.Fprintf(w, "%d files: %d healthy, %d degraded, %d lost; catalog %s\n", len(r.Files), r.Healthy, r.Degraded, r.Lost, r.Catalog.Health)
}
