package catalog

import (
	"bytes"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/storage"
	"github.com/zerogrid/zerogrid/internal/storage/backendtest"
	"github.com/zerogrid/zerogrid/internal/storage/dir"
)

// openDirs opens dir backends over ts.dirs[i] for the given indices, with
// the given domains.
func (ts *testStore) openDirs(t *testing.T, idx []int, domains []string) []storage.Backend {
	t.Helper()
	var bs []storage.Backend
	for j, i := range idx {
		b, err := dir.Open(fmt.Sprintf("b%d", i), domains[j], ts.dirs[i], nil)
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	return bs
}

// TestRepairOntoSpare: backend b2 is gone for good and taken out of the
// configuration; a spare b6 (sharing rack0 with b0) is added. Repair
// rebuilds every shard b2 held onto b6, never two shards of a segment on
// one backend nor more than MaxPerDomain on one domain, commits the moved
// references, and a fresh open reads everything back with any further two
// backends down.
func TestRepairOntoSpare(t *testing.T) {
	t.Parallel()
	ts := newTestStore(t, 7, 4, 2)
	sec := secret(t)
	racks := []string{"rack0", "rack1", "rack2", "rack3", "rack4", "rack5", "rack0"}
	first := ts.openDirs(t, []int{0, 1, 2, 3, 4, 5}, racks[:6])
	s, err := Init(t.Context(), ts.opts(first), sec)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"big": randBytes(t, 3*testSegment+5), "small": randBytes(t, 10)}
	putFiles(t, s, files)
	s.Close()

	idx := []int{0, 1, 3, 4, 5, 6}
	doms := []string{"rack0", "rack1", "rack3", "rack4", "rack5", "rack0"}
	s, err = Open(t.Context(), ts.opts(ts.openDirs(t, idx, doms)), sec)
	if err != nil {
		t.Fatal(err)
	}
	r := check(t, s, false)
	if r.Degraded != 2 || r.Catalog.Health != Degraded || len(r.Down) != 1 || r.Down[0] != "b2" {
		t.Fatalf("with b2 gone: %+v", r)
	}
	seq := s.Seq()
	rep, err := s.Repair(t.Context(), RepairOptions{})
	if err != nil || !rep.OK() || !rep.Committed || rep.Seq != seq+1 {
		t.Fatalf("repair: %+v %v", rep, err)
	}
	for _, sr := range rep.Repaired {
		if sr.File != CatalogName && (sr.From != "b2" || sr.To != "b6") {
			t.Fatalf("moved %+v, want b2 → b6", sr)
		}
	}
	if r := check(t, s, true); !r.OK() {
		t.Fatalf("after repair: %+v", r)
	}
	domain := map[string]string{}
	for j, i := range idx {
		domain[fmt.Sprintf("b%d", i)] = doms[j]
	}
	for _, e := range s.List("") {
		for _, ref := range e.Segments {
			perDomain, perBackend := map[string]int{}, map[string]int{}
			for _, loc := range ref.Shards {
				perDomain[domain[loc.Backend]]++
				perBackend[loc.Backend]++
				if loc.Backend == "b2" || perBackend[loc.Backend] > 1 || perDomain[domain[loc.Backend]] > storage.MaxPerDomain(4, 2) {
					t.Fatalf("%s: segment %s placed %+v", e.Name, ref.ID, ref.Shards)
				}
			}
			if len(ref.Shards) != 6 {
				t.Fatalf("%s: %d shards", e.Name, len(ref.Shards))
			}
		}
	}
	s.Close()

	again := ts.openDirs(t, idx, doms)
	for _, down := range [][2]int{{0, 1}, {4, 5}} { // b0+b1, b5+b6
		bs := make([]storage.Backend, 0, len(again))
		for j, b := range again {
			if j != down[0] && j != down[1] {
				bs = append(bs, b)
			}
		}
		// A store opened on four of the six backends: the other two are
		// simply not there.
		s2, err := Open(t.Context(), Options{Params: ts.opts(nil).Params, Backends: padDown(again, bs)}, sec)
		if err != nil {
			t.Fatalf("open without %v: %v", down, err)
		}
		for name, data := range files {
			if got := getBytes(t, s2, name); !bytes.Equal(got, data) {
				t.Fatalf("%s without %v: %d bytes", name, down, len(got))
			}
		}
	}
}

// padDown returns all, with those not in up replaced by backends that are
// down (same id and domain), so placement still sees the full set.
func padDown(all, up []storage.Backend) []storage.Backend {
	isUp := map[string]bool{}
	for _, b := range up {
		isUp[b.ID()] = true
	}
	out := make([]storage.Backend, len(all))
	for i, b := range all {
		out[i] = b
		if !isUp[b.ID()] {
			out[i] = downBackend{id: b.ID(), domain: b.Domain(), err: fmt.Errorf("test: %s is down", filepath.Base(b.ID()))}
		}
	}
	return out
}

// TestRepairRespectsDomains: racks r0, r1, r2 of two backends each; b0 (r0)
// goes down, and spares b6 (r1) and b7 (r0) join. A segment already has
// MaxPerDomain = 2 shards in r1, so every shard of b0 must go to b7, never
// b6. When b0 comes back, its stale copies are garbage that GC removes,
// and nothing referenced goes.
func TestRepairRespectsDomains(t *testing.T) {
	t.Parallel()
	ts := newTestStore(t, 8, 4, 2)
	sec := secret(t)
	racks := []string{"r0", "r0", "r1", "r1", "r2", "r2", "r1", "r0"}
	all := []int{0, 1, 2, 3, 4, 5, 6, 7}
	s, err := Init(t.Context(), ts.opts(ts.openDirs(t, all[:6], racks[:6])), sec)
	if err != nil {
		t.Fatal(err)
	}
	data := randBytes(t, 2*testSegment+3)
	putFiles(t, s, map[string][]byte{"f": data})
	s.Close()

	var faulty []*backendtest.Faulty
	var bs []storage.Backend
	for _, b := range ts.openDirs(t, all, racks) {
		f := backendtest.NewFaulty(b)
		faulty, bs = append(faulty, f), append(bs, f)
	}
	faulty[0].SetDown(true)
	s, err = Open(t.Context(), ts.opts(bs), sec)
	if err != nil {
		t.Fatal(err)
	}
	rep, err := s.Repair(t.Context(), RepairOptions{})
	if err != nil || !rep.OK() || !rep.Committed {
		t.Fatalf("repair: %+v %v", rep, err)
	}
	moved := map[string]bool{}
	for _, sr := range rep.Repaired {
		if sr.File == CatalogName {
			continue
		}
		if sr.From != "b0" || sr.To != "b7" {
			t.Fatalf("moved %+v, want b0 → b7 (b6's rack r1 is full)", sr)
		}
		moved[fmt.Sprintf("shard-%s-%03d", sr.Segment, sr.Index)] = true
	}
	if len(moved) != 3 {
		t.Fatalf("%d shards moved, want one per segment", len(moved))
	}
	if r := check(t, s, true); !r.OK() {
		t.Fatalf("after repair, b0 still down: %+v", r)
	}

	// b0 is back: its shards are stale, and it lacks the newest root.
	faulty[0].SetDown(false)
	if r := check(t, s, false); r.OK() || r.Healthy != 1 || len(r.RootMissing) != 1 || r.RootMissing[0] != "b0" {
		t.Fatalf("b0 back: %+v", r)
	}
	if rep, err := s.Repair(t.Context(), RepairOptions{}); err != nil || !rep.OK() || len(rep.RootsWritten) != 1 || len(rep.Repaired) != 0 {
		t.Fatalf("repair of the root: %+v %v", rep, err)
	}
	gc, err := s.GC(t.Context(), GCOptions{Grace: -1})
	if err != nil || len(gc.Down) != 0 {
		t.Fatalf("gc: %+v %v", gc, err)
	}
	for _, d := range gc.Deleted {
		if d.Backend != "b0" {
			t.Fatalf("gc deleted %+v: only b0 holds stale copies", d)
		}
		delete(moved, d.Name)
	}
	if len(moved) != 0 {
		t.Fatalf("stale copies left on b0: %v", moved)
	}
	if r := check(t, s, true); !r.OK() {
		t.Fatalf("after gc: %+v", r)
	}
	faulty[3].SetDown(true)
	faulty[7].SetDown(true)
	if got := getBytes(t, s, "f"); !bytes.Equal(got, data) {
		t.Fatal("read back other data")
	}
}

// TestRepairWithoutRoom: one of six backends down and no spare: no backend
// may take its shards (each holds one already), so repair says so and
// fails for the data, but still re-encodes the catalog over the five that
// answer, which leaves the catalog healthy.
func TestRepairWithoutRoom(t *testing.T) {
	t.Parallel()
	ts := newTestStore(t, 6, 4, 2)
	bs, faulty := ts.backends(t)
	s, err := Init(t.Context(), ts.opts(bs), secret(t))
	if err != nil {
		t.Fatal(err)
	}
	putFiles(t, s, map[string][]byte{"f": randBytes(t, testSegment+1)})
	faulty[5].SetDown(true)
	rep, err := s.Repair(t.Context(), RepairOptions{})
	if err != nil || rep.OK() || len(rep.Failed) != 2 || !rep.Committed {
		t.Fatalf("repair: %+v %v", rep, err)
	}
	for _, f := range rep.Failed {
		if f.File != "f" || !strings.Contains(f.Err, "add a backend in another domain") {
			t.Fatalf("failure %+v", f)
		}
	}
	r := check(t, s, false)
	if r.Catalog.Health != Healthy || r.Degraded != 1 || len(r.Down) != 1 || r.Down[0] != "b5" {
		t.Fatalf("after repair: %+v", r)
	}
	for _, ref := range s.rootRefs {
		for _, loc := range ref.Shards {
			if loc.Backend == "b5" {
				t.Fatalf("catalog re-encoded onto the down backend: %+v", ref.Shards)
			}
		}
	}
}

// TestRepairBesideWriter: repair runs while another writer of the same
// Store (as a mount is) puts new files and replaces one repair is working
// on. Nothing is lost: the new files are there, the replaced file has its
// new content, and a final check and repair leave the store healthy.
func TestRepairBesideWriter(t *testing.T) {
	t.Parallel()
	ts := newTestStore(t, 6, 4, 2)
	sec := secret(t)
	bs, _ := ts.backends(t)
	s, err := Init(t.Context(), ts.opts(bs), sec)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"a": randBytes(t, 3*testSegment+7), "b": randBytes(t, 2*testSegment)}
	putFiles(t, s, files)
	ts.removeShards(t, 2)
	newer := randBytes(t, testSegment+3)
	done := make(chan error, 1)
	go func() {
		for i := range 4 {
			name := fmt.Sprintf("new%d", i)
			files[name] = randBytes(t, 1000+i)
			if _, err := s.Put(t.Context(), name, bytes.NewReader(files[name]), 0o644, time.Now()); err != nil {
				done <- err
				return
			}
		}
		_, err := s.Put(t.Context(), "a", bytes.NewReader(newer), 0o644, time.Now())
		done <- err
	}()
	if _, err := s.Repair(t.Context(), RepairOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	files["a"] = newer
	for name, want := range files {
		if got := getBytes(t, s, name); !bytes.Equal(got, want) {
			t.Fatalf("%s differs after repair beside a writer", name)
		}
	}
	if _, err := s.Repair(t.Context(), RepairOptions{}); err != nil {
		t.Fatal(err)
	}
	if r := check(t, s, true); !r.OK() || r.Healthy != len(files) {
		t.Fatalf("not healthy after a second repair: %+v", r)
	}
}
