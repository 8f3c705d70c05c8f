package idmap

import (
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/zerogrid/zerogrid/internal/workload"
)

func open(t *testing.T, dir string, pool Pool) *Allocator {
	t.Helper()
	a, err := Open(dir, pool)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestRangesAreDisjointAndKept(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	a := open(t, dir, DefaultPool)
	r1, err := a.Acquire(1, "container/web")
	if err != nil {
		t.Fatal(err)
	}
	r1v, _ := a.Acquire(1, "volume/data")
	r2, _ := a.Acquire(2, "container/web")
	if r1 != r1v || r1 == r2 || r1.Base != DefaultPool.First || r2.Base != DefaultPool.First+Size {
		t.Fatalf("ranges %v %v %v: want one per deployment, lowest first", r1, r1v, r2)
	}
	// A restarted agent finds them; another allocator over the same
	// directory agrees.
	b := open(t, dir, DefaultPool)
	if got, ok, err := b.Lookup(1); err != nil || !ok || got != r1 {
		t.Fatalf("after reopening: %v %v %v, want %v", got, ok, err, r1)
	}
	if err := b.Release(1, "container/web"); err != nil {
		t.Fatal(err)
	}
	if got, ok, _ := a.Lookup(1); !ok || got != r1 {
		t.Fatal("the range went while the volume still holds it")
	}
	if err := a.Release(1, "volume/data"); err != nil {
		t.Fatal(err)
	}
	if err := a.Release(1, "volume/data"); err != nil {
		t.Fatalf("releasing twice: %v", err)
	}
	if _, ok, _ := a.Lookup(1); ok {
		t.Fatal("a range without holders is still allocated")
	}
	if r3, _ := a.Acquire(3, "container/x"); r3 != r1 {
		t.Fatalf("the freed range was not reused: %v, want %v", r3, r1)
	}
}

func TestExhausted(t *testing.T) {
	t.Parallel()
	a := open(t, t.TempDir(), Pool{First: 1 << 20, Count: 2})
	for dep := uint64(1); dep <= 2; dep++ {
		if _, err := a.Acquire(dep, "container/c"); err != nil {
			t.Fatal(err)
		}
	}
	_, err := a.Acquire(3, "container/c")
	if !errors.Is(err, ErrExhausted) || workload.IsPermanent(err) {
		t.Fatalf("third range of a pool of two: %v, want a retryable ErrExhausted", err)
	}
}

func TestConcurrentAllocators(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	as := []*Allocator{open(t, dir, DefaultPool), open(t, dir, DefaultPool)}
	got := make([]Range, 40)
	var wg sync.WaitGroup
	for i := range got {
		wg.Go(func() {
			r, err := as[i%2].Acquire(uint64(i+1), "container/c")
			if err != nil {
				t.Error(err)
			}
			got[i] = r
		})
	}
	wg.Wait()
	seen := map[Range]bool{}
	for _, r := range got {
		if seen[r] {
			t.Fatalf("range %v given twice", r)
		}
		seen[r] = true
	}
}

func TestPrune(t *testing.T) {
	t.Parallel()
	a := open(t, t.TempDir(), DefaultPool)
	a.Acquire(1, "container/web")
	a.Acquire(1, "volume/data")
	a.Acquire(2, "container/gone")
	err := a.Prune("container", func(dep uint64, name string) bool { return dep == 1 && name == "web" })
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, _ := a.Lookup(2); ok {
		t.Error("a range held only by a container that does not exist is still allocated")
	}
	if _, ok, _ := a.Lookup(1); !ok {
		t.Error("a range in use was freed")
	}
}

func TestHost(t *testing.T) {
	t.Parallel()
	r := Range{Base: 1 << 20}
	for id, want := range map[int]int{0: 1 << 20, 1000: 1<<20 + 1000, Size - 1: 1<<20 + Size - 1, Size: 1<<20 + Nobody, 1 << 30: 1<<20 + Nobody, -1: 1<<20 + Nobody} {
		if got := r.Host(id); got != want {
			t.Errorf("Host(%d) = %d, want %d", id, got, want)
		}
	}
}

func TestPoolCheck(t *testing.T) {
	t.Parallel()
	for _, p := range []Pool{{First: 0, Count: 1}, {First: Size + 1, Count: 1}, {First: 1 << 20, Count: 0}, {First: 0xFFFF0000, Count: 1}, {First: 1 << 31, Count: 1 << 15}} {
		if err := p.Check(); err == nil {
			t.Errorf("pool %+v accepted", p)
		}
	}
	if err := DefaultPool.Check(); err != nil {
		t.Error(err)
	}
}

// A record that would map a container onto the node's own ids, or
// another deployment's record, is refused rather than used.
func TestBadRecordRefused(t *testing.T) {
	t.Parallel()
	a := open(t, t.TempDir(), DefaultPool)
	for name, body := range map[string]string{
		"root range":  `{"version":1,"deployment":5,"base":0,"holders":["container/web"]}`,
		"off grid":    `{"version":1,"deployment":5,"base":1879048193,"holders":["container/web"]}`,
		"other dep":   `{"version":1,"deployment":6,"base":1879048192,"holders":["container/web"]}`,
		"bad holder":  `{"version":1,"deployment":5,"base":1879048192,"holders":["../x"]}`,
		"new version": `{"version":2,"deployment":5,"base":1879048192,"holders":["container/web"]}`,
	} {
		if err := os.WriteFile(a.path(5), []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		if _, err := a.Acquire(5, "container/web"); err == nil {
			t.Errorf("%s: record accepted", name)
		}
	}
}

func FuzzRecord(f *testing.F) {
	f.Add([]byte(`{"version":1,"deployment":5,"base":1879048192,"holders":["container/web","volume/data"]}`))
	f.Add([]byte(`{"version":1,"deployment":5,"base":0,"holders":[]}`))
	dir := f.TempDir()
	a, err := Open(dir, DefaultPool)
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		p := filepath.Join(a.dir, "5.json")
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		rec, ok, err := a.load(5)
		if err != nil || !ok {
			return
		}
		r := Range{Base: rec.Base}
		if lo, hi := r.Host(0), r.Host(Size-1); lo < Size || hi >= 1<<32-1 {
			t.Fatalf("accepted a record mapping onto %d..%d", lo, hi)
		}
	})
}
