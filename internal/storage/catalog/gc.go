package catalog

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/zerogrid/zerogrid/internal/storage"
)

// ErrStale: the store was opened at an older root than the newest one on
// the backends; reopen it. (Kept here rather than in errors.go, which
// another change is editing.)
var ErrStale = errors.New("the store changed since it was opened")

// DefaultGrace is how long GC leaves an unreferenced shard alone after it
// first saw it: longer than any put of another writer takes, so shards
// stored but not yet committed are not destroyed.
const DefaultGrace = time.Hour

// gcStateName is the object on each backend that records when GC first saw
// each unreferenced shard there (docs/storage-operations.md).
const gcStateName = "gc-pending"

// maxGCState bounds the state object GC reads back (it lists shard names,
// about 60 bytes each).
const maxGCState = 64 << 20

// GCOptions configure GC.
type GCOptions struct {
	// Grace: an unreferenced shard is deleted only once GC has seen it
	// unreferenced for this long. 0 means DefaultGrace; a negative value
	// deletes on first sight (only when no other writer can be running).
	Grace time.Duration
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// GCObject is one object GC deleted.
type GCObject struct {
	Backend string `json:"backend"`
	Name    string `json:"name"`
}

// GCReport is the result of GC.
type GCReport struct {
	Deleted []GCObject `json:"deleted"`
	// Pending counts unreferenced shards still inside their grace period.
	Pending int `json:"pending"`
	// Referenced counts the shards that the catalog or the root references.
	Referenced int      `json:"referenced"`
	Down       []string `json:"down,omitempty"` // backends not collected
}

// GC deletes, on every backend, the shards that neither a file of the
// current catalog nor the catalog itself references at that backend (left
// by a crash in the middle of a put, a failed cleanup, or a shard that
// repair moved away) once they have been unreferenced for the grace
// period, and root records older than the current one. Objects that are
// not shards or roots are left alone. It refuses to run when a newer root
// than the one the store was opened at exists: the catalog it would judge
// by is stale.
//
// Backends keep no modification times, so the grace is counted from the
// first GC run that saw the shard unreferenced, recorded in an object
// gc-pending on that backend: with the default grace, a crash's orphans go
// in the first run at least an hour after the one that first saw them.
func (s *Store) GC(ctx context.Context, opts GCOptions) (*GCReport, error) {
	grace := opts.Grace
	if grace == 0 {
		grace = DefaultGrace
	}
	now := time.Now
	if opts.Now != nil {
		now = opts.Now
	}
	if err := s.checkNewest(ctx); err != nil {
		return nil, err
	}
	refd := map[string]map[string]bool{}
	mark := func(refs []storage.SegmentRef) {
		for _, ref := range refs {
			for _, loc := range ref.Shards {
				if refd[loc.Backend] == nil {
					refd[loc.Backend] = map[string]bool{}
				}
				refd[loc.Backend][storage.ShardName(ref.ID, loc.Index)] = true
			}
		}
	}
	mark(s.rootRefs)
	for _, e := range s.cat.List("") {
		mark(e.Segments)
	}
	rep := &GCReport{Deleted: []GCObject{}}
	for _, b := range s.backends {
		if err := s.collect(ctx, b, refd[b.ID()], grace, now(), rep); err != nil {
			if ctx.Err() != nil {
				return rep, ctx.Err()
			}
			s.log.Warn("gc: backend skipped", "backend", b.ID(), "err", err)
			rep.Down = append(rep.Down, b.ID())
		}
	}
	return rep, nil
}

// checkNewest fails if a root above the store's seq verifies.
func (s *Store) checkNewest(ctx context.Context) error {
	scan, err := s.scanRoots(ctx)
	if err != nil {
		return err
	}
	for seq, holders := range scan.holders {
		if seq <= s.seq {
			continue
		}
		for _, b := range holders {
			raw, err := b.Get(ctx, rootName(seq), 0, -1)
			if err != nil {
				continue
			}
			if _, err := openRoot(s.keys, seq, raw); err == nil {
				return fmt.Errorf("%w: root %d exists, this store was opened at %d (another writer committed): open the store again and rerun gc", ErrStale, seq, s.seq)
			}
		}
	}
	return nil
}

// collect runs GC on one backend.
func (s *Store) collect(ctx context.Context, b storage.Backend, refd map[string]bool, grace time.Duration, now time.Time, rep *GCReport) error {
	var orphans, oldRoots []string
	err := b.List(ctx, "", func(info storage.Info) error {
		switch {
		case strings.HasPrefix(info.Name, "shard-"):
			if refd[info.Name] {
				rep.Referenced++
			} else {
				orphans = append(orphans, info.Name)
			}
		case strings.HasPrefix(info.Name, rootPrefix):
			if seq, ok := parseRootName(info.Name); ok && seq < s.seq {
				oldRoots = append(oldRoots, info.Name)
			}
		}
		return nil
	})
	if err != nil {
		return fmt.Errorf("list: %w", err)
	}
	seen, err := s.readGCState(ctx, b)
	if err != nil {
		return err
	}
	sort.Strings(orphans)
	next := map[string]time.Time{}
	var doomed []string
	for _, name := range orphans {
		first, ok := seen[name]
		if !ok || first.After(now) {
			first = now
		}
		if grace < 0 || now.Sub(first) >= grace {
			doomed = append(doomed, name)
		} else {
			next[name] = first
		}
	}
	// Record the pending ones before deleting, so an interrupted run
	// still starts their clocks.
	if err := s.writeGCState(ctx, b, next); err != nil {
		return err
	}
	rep.Pending += len(next)
	for _, name := range append(doomed, oldRoots...) {
		if err := b.Delete(ctx, name); err != nil {
			return fmt.Errorf("delete %s: %w", name, err)
		}
		rep.Deleted = append(rep.Deleted, GCObject{Backend: b.ID(), Name: name})
	}
	return nil
}

func (s *Store) readGCState(ctx context.Context, b storage.Backend) (map[string]time.Time, error) {
	raw, err := b.Get(ctx, gcStateName, 0, -1)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return map[string]time.Time{}, nil
	case err != nil:
		return nil, fmt.Errorf("read %s: %w", gcStateName, err)
	}
	return parseGCState(raw), nil
}

func (s *Store) writeGCState(ctx context.Context, b storage.Backend, seen map[string]time.Time) error {
	if len(seen) == 0 {
		if err := b.Delete(ctx, gcStateName); err != nil {
			return fmt.Errorf("delete %s: %w", gcStateName, err)
		}
		return nil
	}
	if err := b.Put(ctx, gcStateName, encodeGCState(seen)); err != nil {
		return fmt.Errorf("write %s: %w", gcStateName, err)
	}
	return nil
}

// encodeGCState writes one line per shard, sorted: "<unix ns> <name>\n".
func encodeGCState(seen map[string]time.Time) []byte {
	names := make([]string, 0, len(seen))
	for n := range seen {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	for _, n := range names {
		fmt.Fprintf(&buf, "%d %s\n", seen[n].UnixNano(), n)
	}
	return buf.Bytes()
}

// parseGCState reads what encodeGCState wrote. The object comes from a
// backend, so anything malformed is skipped, never trusted: a line only
// matters for a shard that is unreferenced anyway, and a forged early time
// can only hasten the deletion of such a shard on that same backend.
func parseGCState(raw []byte) map[string]time.Time {
	out := map[string]time.Time{}
	if len(raw) > maxGCState {
		return out
	}
	sc := bufio.NewScanner(bytes.NewReader(raw))
	sc.Buffer(make([]byte, 0, 512), storage.MaxNameLen+32)
	for sc.Scan() {
		ts, name, ok := strings.Cut(sc.Text(), " ")
		if !ok || storage.ValidName(name) != nil || !strings.HasPrefix(name, "shard-") {
			continue
		}
		ns, err := strconv.ParseInt(ts, 10, 64)
		if err != nil || ns < 0 {
			continue
		}
		out[name] = time.Unix(0, ns)
	}
	return out
}
