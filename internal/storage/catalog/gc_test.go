package catalog

import (
	"bytes"
	"errors"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/storage"
)

func countShards(t *testing.T, bs []storage.Backend) int {
	t.Helper()
	n := 0
	for _, b := range bs {
		if err := b.List(t.Context(), "shard-", func(storage.Info) error { n++; return nil }); err != nil {
			t.Fatal(err)
		}
	}
	return n
}

// TestGCRemovesOrphansAfterGrace: a put that crashed after storing its
// segments but before committing leaves orphan shards. GC keeps them
// during the grace period, deletes them after it, and never touches a
// referenced shard.
func TestGCRemovesOrphansAfterGrace(t *testing.T) {
	t.Parallel()
	ts := newTestStore(t, 6, 4, 2)
	sec := secret(t)
	bs, _ := ts.backends(t)
	s, err := Init(t.Context(), ts.opts(bs), sec)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{"keep": randBytes(t, 2*testSegment+1)}
	putFiles(t, s, files)
	referenced := countShards(t, bs)

	// The crash: the data encoder stored the segments, no commit followed.
	var orphans []storage.SegmentRef
	if _, err := s.data.Encode(t.Context(), bytes.NewReader(randBytes(t, testSegment+9)), func(w storage.Written) error {
		orphans = append(orphans, w.Ref)
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	orphanShards := countShards(t, bs) - referenced
	if len(orphans) != 2 || orphanShards != 12 {
		t.Fatalf("crash left %d segments, %d shards", len(orphans), orphanShards)
	}

	t0 := time.Unix(1_800_000_000, 0)
	rep, err := s.GC(t.Context(), GCOptions{Now: func() time.Time { return t0 }})
	if err != nil || len(rep.Deleted) != 0 || rep.Pending != orphanShards || rep.Referenced != referenced {
		t.Fatalf("gc inside the grace period: %+v %v", rep, err)
	}
	// 59 minutes later, from another process: still pending.
	bs2, _ := ts.backends(t)
	s2, err := Open(t.Context(), ts.opts(bs2), sec)
	if err != nil {
		t.Fatal(err)
	}
	rep, err = s2.GC(t.Context(), GCOptions{Now: func() time.Time { return t0.Add(59 * time.Minute) }})
	if err != nil || len(rep.Deleted) != 0 || rep.Pending != orphanShards {
		t.Fatalf("gc after 59 minutes: %+v %v", rep, err)
	}
	rep, err = s2.GC(t.Context(), GCOptions{Now: func() time.Time { return t0.Add(DefaultGrace) }})
	if err != nil || len(rep.Deleted) != orphanShards || rep.Pending != 0 || rep.Referenced != referenced {
		t.Fatalf("gc after the grace period: %+v %v", rep, err)
	}
	for _, d := range rep.Deleted {
		found := false
		for _, ref := range orphans {
			for _, loc := range ref.Shards {
				found = found || (loc.Backend == d.Backend && storage.ShardName(ref.ID, loc.Index) == d.Name)
			}
		}
		if !found {
			t.Fatalf("gc deleted %+v, which is not an orphan", d)
		}
	}
	if n := countShards(t, bs2); n != referenced {
		t.Fatalf("%d shards left, %d referenced", n, referenced)
	}
	for _, b := range bs2 {
		if _, err := b.Stat(t.Context(), gcStateName); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("%s keeps a gc state with nothing pending: %v", b.ID(), err)
		}
	}
	if r := check(t, s2, true); !r.OK() {
		t.Fatalf("after gc: %+v", r)
	}
	if got := getBytes(t, s2, "keep"); !bytes.Equal(got, files["keep"]) {
		t.Fatal("gc damaged a referenced file")
	}

	// A negative grace deletes at once; a stale store refuses to collect.
	if _, err := s2.data.Encode(t.Context(), bytes.NewReader([]byte("orphan")), func(storage.Written) error { return nil }); err != nil {
		t.Fatal(err)
	}
	putFiles(t, s2, map[string][]byte{"newer": {1, 2, 3}})
	if _, err := s.GC(t.Context(), GCOptions{Grace: -1}); !errors.Is(err, ErrStale) {
		t.Fatalf("gc on a stale store: %v", err)
	}
	rep, err = s2.GC(t.Context(), GCOptions{Grace: -1})
	if err != nil || len(rep.Deleted) != 6 {
		t.Fatalf("gc with no grace: %+v %v", rep, err)
	}
	if r := check(t, s2, true); !r.OK() || r.Healthy != 2 {
		t.Fatalf("after gc: %+v", r)
	}
}

func TestGCState(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 42)
	in := map[string]time.Time{"shard-00000000000000000000000000000000-001": now, "shard-ffffffffffffffffffffffffffffffff-019": now.Add(time.Hour)}
	out := parseGCState(encodeGCState(in))
	if len(out) != 2 {
		t.Fatalf("round trip: %v", out)
	}
	for k, v := range in {
		if !out[k].Equal(v) {
			t.Fatalf("%s: %v, want %v", k, out[k], v)
		}
	}
	bad := "x shard-a\n-5 shard-b\n12 root-1\n12 ../x\n\n12\n99999999999999999999 shard-c\n7 shard-ok\n"
	if got := parseGCState([]byte(bad)); len(got) != 1 || got["shard-ok"].UnixNano() != 7 {
		t.Fatalf("malformed state: %v", got)
	}
}

func FuzzParseGCState(f *testing.F) {
	f.Add([]byte("1 shard-x\n"))
	f.Add(encodeGCState(map[string]time.Time{"shard-y": time.Unix(5, 0)}))
	f.Fuzz(func(t *testing.T, b []byte) {
		for name, ts := range parseGCState(b) {
			if storage.ValidName(name) != nil || ts.UnixNano() < 0 {
				t.Fatalf("accepted %q at %v", name, ts)
			}
		}
	})
}
