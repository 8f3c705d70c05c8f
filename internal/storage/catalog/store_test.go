package catalog

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/storage"
	"github.com/zerogrid/zerogrid/internal/storage/backendtest"
	"github.com/zerogrid/zerogrid/internal/storage/dir"
)

const testSegment = 256 << 10

// testStore is n directory backends, each wrapped in a Faulty.
type testStore struct {
	dirs []string
	k, m int
}

func newTestStore(t *testing.T, n, k, m int) *testStore {
	t.Helper()
	ts := &testStore{k: k, m: m}
	root := t.TempDir()
	for i := range n {
		ts.dirs = append(ts.dirs, filepath.Join(root, fmt.Sprintf("b%d", i)))
	}
	return ts
}

// backends opens fresh backend values over the same directories, as a new
// process would.
func (ts *testStore) backends(t *testing.T) ([]storage.Backend, []*backendtest.Faulty) {
	t.Helper()
	var bs []storage.Backend
	var fs []*backendtest.Faulty
	for i, d := range ts.dirs {
		b, err := dir.Open(fmt.Sprintf("b%d", i), fmt.Sprintf("rack%d", i), d, nil)
		if err != nil {
			t.Fatal(err)
		}
		f := backendtest.NewFaulty(b)
		bs, fs = append(bs, f), append(fs, f)
	}
	return bs, fs
}

func (ts *testStore) opts(bs []storage.Backend) Options {
	return Options{Params: storage.Params{K: ts.k, M: ts.m, SegmentSize: testSegment}, Backends: bs}
}

func secret(t *testing.T) []byte {
	t.Helper()
	m, err := identity.NewMnemonic(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	s, err := StorageSecret(m)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func randBytes(t *testing.T, n int) []byte {
	t.Helper()
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// snapshot hashes every file under the backend directories.
func (ts *testStore) snapshot(t *testing.T) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	for _, d := range ts.dirs {
		err := filepath.WalkDir(d, func(p string, e fs.DirEntry, err error) error {
			if err != nil || e.IsDir() {
				return err
			}
			b, err := os.ReadFile(p)
			out[p] = sha256.Sum256(b)
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func getBytes(t *testing.T, s *Store, name string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, _, err := s.Get(t.Context(), name, &buf); err != nil {
		t.Fatalf("get %s: %v", name, err)
	}
	return buf.Bytes()
}

func TestRoundTripAndRecovery(t *testing.T) {
	t.Parallel()
	ts := newTestStore(t, 6, 4, 2)
	sec := secret(t)
	bs, _ := ts.backends(t)
	s, err := Init(t.Context(), ts.opts(bs), sec)
	if err != nil {
		t.Fatal(err)
	}
	files := map[string][]byte{
		"empty":         {},
		"one":           {42},
		"dir/big.bin":   randBytes(t, 3<<20+12345), // 13 segments, the last partial
		"dir/exact.bin": randBytes(t, 2*testSegment),
	}
	mtime := time.Unix(1700000000, 123)
	for name, data := range files {
		res, err := s.Put(t.Context(), name, bytes.NewReader(data), 0o640, mtime)
		if err != nil || res.Entry.Size != int64(len(data)) || res.Missing != 0 {
			t.Fatalf("put %s: %+v %v", name, res, err)
		}
	}
	if got := len(s.List("dir/")); got != 2 {
		t.Fatalf("ls dir/: %d entries", got)
	}
	if e, _ := s.Lookup("dir/big.bin"); len(e.Segments) != 13 {
		t.Fatalf("big.bin: %d segments, want 13", len(e.Segments))
	}
	s.Close()

	// A fresh process with only the secret and the backend list.
	bs2, _ := ts.backends(t)
	s2, err := Open(t.Context(), ts.opts(bs2), sec)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Seq() != 1+uint64(len(files)) {
		t.Fatalf("seq %d", s2.Seq())
	}
	for name, data := range files {
		if got := getBytes(t, s2, name); !bytes.Equal(got, data) {
			t.Fatalf("%s: got %d bytes, want %d", name, len(got), len(data))
		}
		e, _ := s2.Lookup(name)
		if e.Mode != 0o640 || e.MTime != mtime.UnixNano() {
			t.Fatalf("%s: entry %+v", name, e)
		}
	}

	// Replacing a file deletes its old segments once the new root is in.
	old, _ := s2.Lookup("dir/big.bin")
	if _, err := s2.Put(t.Context(), "dir/big.bin", bytes.NewReader([]byte("new")), 0o600, mtime); err != nil {
		t.Fatal(err)
	}
	if got := getBytes(t, s2, "dir/big.bin"); string(got) != "new" {
		t.Fatalf("replaced content %q", got)
	}
	for _, ref := range old.Segments {
		for _, loc := range ref.Shards {
			for _, b := range bs2 {
				if _, err := b.Stat(t.Context(), storage.ShardName(ref.ID, loc.Index)); !errors.Is(err, storage.ErrNotFound) {
					t.Fatalf("old shard %s still on %s: %v", storage.ShardName(ref.ID, loc.Index), b.ID(), err)
				}
			}
		}
	}
	// Only the newest root is left.
	for _, b := range bs2 {
		n := 0
		_ = b.List(t.Context(), rootPrefix, func(storage.Info) error { n++; return nil })
		if n != 1 {
			t.Fatalf("%s holds %d roots", b.ID(), n)
		}
	}
	// Nothing else is left either: every shard on the backends belongs to
	// the current catalog or to a file in it (old catalogs were deleted).
	want := 0
	for _, ref := range s2.rootRefs {
		want += len(ref.Shards)
	}
	for _, e := range s2.List("") {
		for _, ref := range e.Segments {
			want += len(ref.Shards)
		}
	}
	have := 0
	for _, b := range bs2 {
		_ = b.List(t.Context(), "shard-", func(storage.Info) error { have++; return nil })
	}
	if have != want {
		t.Fatalf("%d shards on the backends, %d referenced", have, want)
	}
	if _, _, err := s2.Get(t.Context(), "nope", &bytes.Buffer{}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("get missing: %v", err)
	}
}

func TestDegradedPutAndGet(t *testing.T) {
	t.Parallel()
	ts := newTestStore(t, 6, 4, 2)
	sec := secret(t)
	bs, fs := ts.backends(t)
	if _, err := Init(t.Context(), ts.opts(bs), sec); err != nil {
		t.Fatal(err)
	}
	data := randBytes(t, 5*testSegment/2)
	full := randBytes(t, 3*testSegment/2)
	s, err := Open(t.Context(), ts.opts(bs), sec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(t.Context(), "full", bytes.NewReader(full), 0o600, time.Now()); err != nil {
		t.Fatal(err)
	}
	fs[0].SetDown(true) // m−1 backends down during the put
	res, err := s.Put(t.Context(), "f", bytes.NewReader(data), 0o600, time.Now())
	if err != nil {
		t.Fatalf("put with one backend down: %v", err)
	}
	if res.Missing == 0 {
		t.Fatal("put with a backend down reports no missing shards")
	}

	// m backends down for a get, in a fresh process: the one that missed
	// the put and another.
	bs2, fs2 := ts.backends(t)
	fs2[0].SetDown(true)
	fs2[4].SetDown(true)
	s2, err := Open(t.Context(), ts.opts(bs2), sec)
	if err != nil {
		t.Fatalf("open with m backends down: %v", err)
	}
	if got := getBytes(t, s2, "f"); !bytes.Equal(got, data) {
		t.Fatal("degraded get returned other data")
	}
	// Any m down for the file written in full.
	fs2[0].SetDown(false)
	fs2[1].SetDown(true)
	if got := getBytes(t, s2, "full"); !bytes.Equal(got, full) {
		t.Fatal("degraded get returned other data")
	}
	// The file written with m−1 shards missing survives only m−1 more
	// failures, and the error says why.
	if _, _, err := s2.Get(t.Context(), "f", &bytes.Buffer{}); !errors.Is(err, storage.ErrTooFewShards) {
		t.Fatalf("get f with b1, b4 down: %v", err)
	}
	// A failed GetFile leaves neither the destination nor a temporary file.
	out := t.TempDir()
	dst := filepath.Join(out, "f")
	if _, _, err := s2.GetFile(t.Context(), "f", dst, nil); !errors.Is(err, storage.ErrTooFewShards) {
		t.Fatalf("GetFile with too few shards: %v", err)
	}
	if left, _ := os.ReadDir(out); len(left) != 0 {
		t.Fatalf("failed GetFile left %v", left)
	}
	fs2[1].SetDown(false)
	if _, _, err := s2.GetFile(t.Context(), "f", dst, nil); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("GetFile: %d bytes, %v", len(got), err)
	}
}

func TestQuorumAndNothingWritten(t *testing.T) {
	t.Parallel()
	ts := newTestStore(t, 6, 4, 2)
	sec := secret(t)
	bs, fs := ts.backends(t)
	for _, i := range []int{0, 2, 4} {
		fs[i].SetDown(true)
	}
	if _, err := Init(t.Context(), ts.opts(bs), sec); !errors.Is(err, ErrQuorum) {
		t.Fatalf("init with half the backends down: %v", err)
	}
	for _, i := range []int{0, 2, 4} {
		fs[i].SetDown(false)
	}
	if _, err := Open(t.Context(), ts.opts(bs), sec); !errors.Is(err, ErrNoRoot) {
		t.Fatalf("a failed init left a readable root: %v", err)
	}
	if files := ts.snapshot(t); len(files) != 0 {
		t.Fatalf("failed init left %d objects", len(files))
	}
}

func TestWrongMnemonic(t *testing.T) {
	t.Parallel()
	ts := newTestStore(t, 6, 4, 2)
	bs, _ := ts.backends(t)
	sec := secret(t)
	s, err := Init(t.Context(), ts.opts(bs), sec)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(t.Context(), "f", bytes.NewReader([]byte("x")), 0o600, time.Now()); err != nil {
		t.Fatal(err)
	}
	before := ts.snapshot(t)
	other := secret(t)
	if _, err := Open(t.Context(), ts.opts(bs), other); !errors.Is(err, ErrNoRoot) {
		t.Fatalf("open with another mnemonic: %v", err)
	}
	if _, err := Init(t.Context(), ts.opts(bs), other); !errors.Is(err, ErrForeignStore) {
		t.Fatalf("init over another mnemonic's store: %v", err)
	}
	if _, err := Init(t.Context(), ts.opts(bs), sec); !errors.Is(err, ErrExists) {
		t.Fatalf("init twice: %v", err)
	}
	after := ts.snapshot(t)
	if len(before) != len(after) {
		t.Fatalf("objects changed: %d before, %d after", len(before), len(after))
	}
	for p, h := range before {
		if after[p] != h {
			t.Fatalf("%s changed", p)
		}
	}
}

func TestTamperedRoots(t *testing.T) {
	t.Parallel()
	ts := newTestStore(t, 6, 4, 2)
	sec := secret(t)
	bs, _ := ts.backends(t)
	s, err := Init(t.Context(), ts.opts(bs), sec)
	if err != nil {
		t.Fatal(err)
	}
	old, err := bs[0].Get(t.Context(), rootName(1), 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(t.Context(), "f", bytes.NewReader([]byte("data")), 0o600, time.Now()); err != nil {
		t.Fatal(err)
	}
	cur, err := bs[0].Get(t.Context(), rootName(2), 0, -1)
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(cur)
	flipped[len(flipped)/2] ^= 1
	ctx := context.Background()
	for _, b := range bs {
		// A replayed old root under a higher seq, a random forgery, and a
		// flipped byte in the current root on one backend.
		_ = b.Put(ctx, rootName(7), old)
		_ = b.Put(ctx, rootName(9), randBytes(t, len(cur)))
	}
	_ = bs[0].Put(ctx, rootName(2), flipped)
	s2, err := Open(t.Context(), ts.opts(bs), sec)
	if err != nil {
		t.Fatal(err)
	}
	if s2.Seq() != 2 || string(getBytes(t, s2, "f")) != "data" {
		t.Fatalf("opened seq %d", s2.Seq())
	}
	// With every copy of the current root tampered, the old one is gone too
	// (deleted after the commit): nothing verifies.
	for _, b := range bs {
		_ = b.Put(ctx, rootName(2), flipped)
	}
	if _, err := Open(t.Context(), ts.opts(bs), sec); !errors.Is(err, ErrNoRoot) {
		t.Fatalf("open with every root forged: %v", err)
	}
}

func TestCatalogParams(t *testing.T) {
	t.Parallel()
	mk := func(domains ...string) []storage.Backend {
		var bs []storage.Backend
		for i, d := range domains {
			bs = append(bs, namedBackend{id: fmt.Sprintf("b%d", i), domain: d})
		}
		return bs
	}
	for _, tc := range []struct {
		name         string
		backends     []storage.Backend
		dataK        int
		wantK, wantM int
	}{
		{"six domains", mk("a", "b", "c", "d", "e", "f"), 4, 2, 4},
		{"three domains of two", mk("a", "a", "b", "b", "c", "c"), 4, 3, 3},
		{"no labels", mk("", "", "", ""), 2, 2, 2},
		{"two domains", mk("a", "a", "a", "b", "b", "b"), 4, 0, 0}, // no k ≥ 2 fits: refused
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, ok := catalogParams(tc.backends, tc.dataK)
			if ok != (tc.wantM > 0) || p.K != tc.wantK || p.M != tc.wantM {
				t.Fatalf("got %d+%d ok=%v, want %d+%d", p.K, p.M, ok, tc.wantK, tc.wantM)
			}
		})
	}
}

type namedBackend struct {
	storage.Backend
	id, domain string
}

func (b namedBackend) ID() string     { return b.id }
func (b namedBackend) Domain() string { return b.domain }
