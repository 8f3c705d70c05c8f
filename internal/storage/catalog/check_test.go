package catalog

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/storage"
)

// putFiles puts the files and returns the store.
func putFiles(t *testing.T, s *Store, files map[string][]byte) {
	t.Helper()
	for name, data := range files {
		if _, err := s.Put(t.Context(), name, bytes.NewReader(data), 0o600, time.Now()); err != nil {
			t.Fatalf("put %s: %v", name, err)
		}
	}
}

func check(t *testing.T, s *Store, deep bool) *CheckReport {
	t.Helper()
	var last, total int64
	r, err := s.Check(t.Context(), CheckOptions{Deep: deep, Progress: func(d, tot int64) { last, total = d, tot }})
	if err != nil {
		t.Fatal(err)
	}
	if last != total || total == 0 {
		t.Fatalf("progress ended at %d of %d", last, total)
	}
	return r
}

func fileHealth(t *testing.T, r *CheckReport, name string) FileHealth {
	t.Helper()
	for _, f := range r.Files {
		if f.Name == name {
			return f
		}
	}
	t.Fatalf("%s not in the report", name)
	return FileHealth{}
}

// removeShards deletes every shard file of a dir backend.
func (ts *testStore) removeShards(t *testing.T, i int) int {
	t.Helper()
	names, err := filepath.Glob(filepath.Join(ts.dirs[i], "shard-*"))
	if err != nil || len(names) == 0 {
		t.Fatalf("no shards on b%d: %v", i, err)
	}
	for _, n := range names {
		if err := os.Remove(n); err != nil {
			t.Fatal(err)
		}
	}
	return len(names)
}

// TestCheckRepairRestoresRedundancy: the shards of m backends vanish;
// check calls everything degraded and names them; repair rebuilds them;
// then the data reads back with two *other* backends down, which needs the
// rebuilt shards: full redundancy is back.
func TestCheckRepairRestoresRedundancy(t *testing.T) {
	t.Parallel()
	ts := newTestStore(t, 6, 4, 2)
	sec := secret(t)
	bs, _ := ts.backends(t)
	s, err := Init(t.Context(), ts.opts(bs), sec)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"a": randBytes(t, 4*testSegment+100), "b/c": randBytes(t, 1000), "empty": {}}
	putFiles(t, s, files)
	if r := check(t, s, true); !r.OK() || r.Healthy != 3 {
		t.Fatalf("fresh store not healthy: %+v", r)
	}
	ts.removeShards(t, 1)
	ts.removeShards(t, 4)

	r := check(t, s, false)
	if r.OK() || r.Degraded != 2 || r.Healthy != 1 || r.Lost != 0 || r.Catalog.Health != Degraded {
		t.Fatalf("after losing b1 and b4: %+v", r)
	}
	a := fileHealth(t, r, "a")
	if len(a.Problems) != 2*5 { // 5 segments, one shard on each of b1, b4
		t.Fatalf("a: %d problems: %v", len(a.Problems), a.Problems)
	}
	for _, p := range a.Problems {
		if p.Problem != ProblemMissing || (p.Backend != "b1" && p.Backend != "b4") {
			t.Fatalf("problem %v", p)
		}
	}
	var text bytes.Buffer
	r.WriteText(&text)
	if !strings.Contains(text.String(), `on backend "b4": missing`) || !strings.Contains(text.String(), "2 degraded") {
		t.Fatalf("text report:\n%s", text.String())
	}

	rep, err := s.Repair(t.Context(), RepairOptions{})
	if err != nil || !rep.OK() || rep.Committed || len(rep.Repaired) == 0 {
		t.Fatalf("repair: %+v %v", rep, err)
	}
	for _, sr := range rep.Repaired {
		if sr.To != sr.From {
			t.Fatalf("shard moved although its backend answers: %+v", sr)
		}
	}
	if r := check(t, s, true); !r.OK() {
		t.Fatalf("after repair: %+v", r)
	}
	s.Close()

	bs2, faulty := ts.backends(t)
	faulty[0].SetDown(true)
	faulty[2].SetDown(true)
	s2, err := Open(t.Context(), ts.opts(bs2), sec)
	if err != nil {
		t.Fatal(err)
	}
	for name, data := range files {
		if got := getBytes(t, s2, name); !bytes.Equal(got, data) {
			t.Fatalf("%s with b0, b2 down: %d bytes", name, len(got))
		}
	}
}

// TestCheckFindsFlippedByte: a byte flipped in a shard file is found by
// its hash and named (file, segment, backend); reads still return the
// right data; repair rewrites the shard byte for byte.
func TestCheckFindsFlippedByte(t *testing.T) {
	t.Parallel()
	ts := newTestStore(t, 6, 4, 2)
	bs, _ := ts.backends(t)
	s, err := Init(t.Context(), ts.opts(bs), secret(t))
	if err != nil {
		t.Fatal(err)
	}
	data := randBytes(t, 3*testSegment)
	putFiles(t, s, map[string][]byte{"f": data})
	e, _ := s.Lookup("f")
	ref := e.Segments[1]
	loc := ref.Shards[2]
	var bi int
	for i, b := range bs {
		if b.ID() == loc.Backend {
			bi = i
		}
	}
	path := filepath.Join(ts.dirs[bi], storage.ShardName(ref.ID, loc.Index))
	orig, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(orig)
	bad[len(bad)-1000] ^= 0x40
	if err := os.WriteFile(path, bad, 0o600); err != nil {
		t.Fatal(err)
	}

	r := check(t, s, false)
	f := fileHealth(t, r, "f")
	if f.Health != Degraded || len(f.Problems) != 1 {
		t.Fatalf("after a flipped byte: %+v", f)
	}
	p := f.Problems[0]
	if p.Problem != ProblemCorrupt || p.Backend != loc.Backend || p.Segment != ref.ID.String() || p.Index != loc.Index || !strings.Contains(p.Err, "hash") {
		t.Fatalf("problem %+v, want shard %d of %s on %s", p, loc.Index, ref.ID, loc.Backend)
	}
	if got := getBytes(t, s, "f"); !bytes.Equal(got, data) {
		t.Fatal("read with a corrupt shard returned other data")
	}
	rep, err := s.Repair(t.Context(), RepairOptions{})
	if err != nil || !rep.OK() || len(rep.Repaired) != 1 || rep.Repaired[0].To != loc.Backend || rep.Repaired[0].Problem != ProblemCorrupt {
		t.Fatalf("repair: %+v %v", rep, err)
	}
	if now, err := os.ReadFile(path); err != nil || !bytes.Equal(now, orig) {
		t.Fatalf("repaired shard differs from the original: %v", err)
	}
	if r := check(t, s, true); !r.OK() {
		t.Fatalf("after repair: %+v", r)
	}
}

// TestCheckLostAndRoots: with more than m shards of a segment gone a file
// is lost, repair says it cannot rebuild it; a backend missing the current
// root is reported and gets it back from repair.
func TestCheckLostAndRoots(t *testing.T) {
	t.Parallel()
	ts := newTestStore(t, 6, 4, 2)
	bs, _ := ts.backends(t)
	s, err := Init(t.Context(), ts.opts(bs), secret(t))
	if err != nil {
		t.Fatal(err)
	}
	putFiles(t, s, map[string][]byte{"x": randBytes(t, 5000), "y": randBytes(t, 7000)})
	root := rootName(s.Seq())
	if err := bs[5].Delete(t.Context(), root); err != nil {
		t.Fatal(err)
	}
	e, _ := s.Lookup("x")
	for _, loc := range e.Segments[0].Shards[:3] {
		if err := s.byID[loc.Backend].Delete(t.Context(), storage.ShardName(e.Segments[0].ID, loc.Index)); err != nil {
			t.Fatal(err)
		}
	}
	r := check(t, s, false)
	if r.Lost != 1 || fileHealth(t, r, "x").Health != Lost || fileHealth(t, r, "y").Health != Healthy || len(r.RootMissing) != 1 || r.RootMissing[0] != "b5" {
		t.Fatalf("report %+v", r)
	}
	rep, err := s.Repair(t.Context(), RepairOptions{})
	if err != nil || rep.OK() || len(rep.Failed) != 1 || rep.Failed[0].File != "x" || !strings.Contains(rep.Failed[0].Err, "cannot be rebuilt") {
		t.Fatalf("repair of a lost file: %+v %v", rep, err)
	}
	if len(rep.RootsWritten) != 1 || rep.RootsWritten[0] != "b5" {
		t.Fatalf("roots written: %v", rep.RootsWritten)
	}
	if _, err := bs[5].Stat(t.Context(), root); err != nil {
		t.Fatalf("root not restored on b5: %v", err)
	}
}
