package fusefs

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"slices"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/storage"
	"github.com/zerogrid/zerogrid/internal/storage/catalog"
	"github.com/zerogrid/zerogrid/internal/storage/dir"
)

// rig is a store on directory backends mounted at mnt.
type rig struct {
	dirs   []string
	params storage.Params
	secret []byte
	st     *catalog.Store
	mnt    string
}

func needFUSE(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount FUSE")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("needs /dev/fuse: %v", err)
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		if _, err := exec.LookPath("fusermount"); err != nil {
			t.Skip("needs fusermount3")
		}
	}
}

// newRig makes n backend directories (those in small on a 1 MiB tmpfs),
// initialises a store with k, m and the segment size, and mounts it.
func newRig(t *testing.T, n, k, m, seg int, small ...int) *rig {
	t.Helper()
	needFUSE(t)
	root := t.TempDir()
	r := &rig{params: storage.Params{K: k, M: m, SegmentSize: seg}, mnt: filepath.Join(root, "mnt")}
	for i := range n {
		d := filepath.Join(root, fmt.Sprintf("b%d", i))
		if slices.Contains(small, i) {
			if err := os.MkdirAll(d, 0o700); err != nil {
				t.Fatal(err)
			}
			if err := syscall.Mount("tmpfs", d, "tmpfs", 0, "size=1m,mode=0700"); err != nil {
				t.Skipf("needs a tmpfs mount: %v", err)
			}
			t.Cleanup(func() { syscall.Unmount(d, syscall.MNT_DETACH) })
		}
		r.dirs = append(r.dirs, d)
	}
	mn, err := identity.NewMnemonic(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	if r.secret, err = catalog.StorageSecret(mn); err != nil {
		t.Fatal(err)
	}
	if r.st, err = catalog.Init(t.Context(), r.opts(t), r.secret); err != nil {
		t.Fatal(err)
	}
	r.mount(t)
	return r
}

func (r *rig) opts(t *testing.T) catalog.Options {
	t.Helper()
	var bs []storage.Backend
	for i, d := range r.dirs {
		b, err := dir.Open(fmt.Sprintf("b%d", i), fmt.Sprintf("rack%d", i), d, nil)
		if err != nil {
			t.Fatal(err)
		}
		bs = append(bs, b)
	}
	return catalog.Options{Params: r.params, Backends: bs}
}

func (r *rig) mount(t *testing.T) {
	t.Helper()
	if err := os.MkdirAll(r.mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	srv, err := Mount(r.mnt, r.st, Options{CacheDir: filepath.Join(filepath.Dir(r.mnt), "cache")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := Unmount(srv, r.mnt, 5*time.Second, 5*time.Second); err != nil && !errors.Is(err, ErrLingering) {
			t.Errorf("unmount: %v", err)
		}
		if Mounted(r.mnt) {
			t.Errorf("%s still mounted", r.mnt)
		}
	})
}

// fresh opens the store again from the backends, as another machine would.
func (r *rig) fresh(t *testing.T) *catalog.Store {
	t.Helper()
	s, err := catalog.Open(t.Context(), r.opts(t), r.secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func get(t *testing.T, s *catalog.Store, name string) []byte {
	t.Helper()
	var buf bytes.Buffer
	if _, _, err := s.Get(t.Context(), name, &buf); err != nil {
		t.Fatalf("get %s from the store: %v", name, err)
	}
	return buf.Bytes()
}

func randBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

func writeSync(path string, data []byte) error {
	f, err := os.OpenFile(path, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// TestWriteFsyncReadBack: a file written and fsynced through the mount is
// in the store for a new reader; cp and a read through the mount agree.
func TestWriteFsyncReadBack(t *testing.T) {
	r := newRig(t, 6, 4, 2, 64<<10)
	data := randBytes(300<<10 + 17)
	p := filepath.Join(r.mnt, "a.bin")
	if err := writeSync(p, data); err != nil {
		t.Fatal(err)
	}
	if got := get(t, r.fresh(t), "a.bin"); !bytes.Equal(got, data) {
		t.Fatal("store copy differs from what was written through the mount")
	}
	src := filepath.Join(t.TempDir(), "src")
	os.WriteFile(src, data[:1000], 0o600)
	if out, err := exec.Command("cp", src, filepath.Join(r.mnt, "copied")).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	if got := get(t, r.fresh(t), "copied"); !bytes.Equal(got, data[:1000]) {
		t.Fatal("cp'd file differs in the store")
	}
	got, err := os.ReadFile(p)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read back through the mount: %v", err)
	}
	// Overwrite the middle in place (read-modify-write through the spool).
	f, err := os.OpenFile(p, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteAt([]byte("patched"), 100000)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	copy(data[100000:], "patched")
	if got := get(t, r.fresh(t), "a.bin"); !bytes.Equal(got, data) {
		t.Fatal("in-place write not stored")
	}
	if err := os.Truncate(p, 5); err != nil {
		t.Fatal(err)
	}
	if got := get(t, r.fresh(t), "a.bin"); !bytes.Equal(got, data[:5]) {
		t.Fatalf("truncate: store holds %d bytes", len(got))
	}
	var sfs syscall.Statfs_t
	if err := syscall.Statfs(r.mnt, &sfs); err != nil || sfs.Blocks == 0 {
		t.Fatalf("statfs: %v %+v", err, sfs)
	}
}

// TestTree: mkdir, rename, unlink, rmdir and readdir through the mount,
// checked in a fresh store.
func TestTree(t *testing.T) {
	r := newRig(t, 6, 4, 2, 64<<10)
	m := r.mnt
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(m, "d/sub"), 0o755))
	must(os.Mkdir(filepath.Join(m, "empty"), 0o755))
	must(writeSync(filepath.Join(m, "d/sub/f"), []byte("hello")))
	must(writeSync(filepath.Join(m, "g"), []byte("world")))
	must(os.Rename(filepath.Join(m, "d"), filepath.Join(m, "e")))
	must(os.Rename(filepath.Join(m, "g"), filepath.Join(m, "e/g2")))
	ents, err := os.ReadDir(filepath.Join(m, "e"))
	must(err)
	var got []string
	for _, e := range ents {
		got = append(got, fmt.Sprintf("%s:%v", e.Name(), e.IsDir()))
	}
	if want := []string{"g2:false", "sub:true"}; !slices.Equal(got, want) {
		t.Fatalf("readdir e = %v, want %v", got, want)
	}
	if err := os.Remove(filepath.Join(m, "e")); !errors.Is(err, syscall.ENOTEMPTY) {
		t.Fatalf("rmdir of a non-empty dir: %v", err)
	}
	if _, err := os.Stat(filepath.Join(m, "d")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("old directory name: %v", err)
	}
	s := r.fresh(t)
	if b := get(t, s, "e/sub/f"); string(b) != "hello" {
		t.Fatalf("e/sub/f = %q", b)
	}
	if b := get(t, s, "e/g2"); string(b) != "world" {
		t.Fatalf("e/g2 = %q", b)
	}
	if !s.IsDir("empty") {
		t.Fatal("empty directory not stored")
	}
	must(os.Remove(filepath.Join(m, "e/g2")))
	must(os.Remove(filepath.Join(m, "empty")))
	s = r.fresh(t)
	if _, ok := s.Lookup("e/g2"); ok {
		t.Fatal("unlinked file still in the store")
	}
	if s.IsDir("empty") {
		t.Fatal("removed directory still in the store")
	}
	if _, err := os.Stat(filepath.Join(m, "nope")); !errors.Is(err, syscall.ENOENT) {
		t.Fatalf("stat of a missing name: %v", err)
	}
}

// TestLargeFileBoundedMemory writes and reads 64 MiB through the mount
// with 1 MiB segments; the heap of the process (which serves the mount)
// must stay far below the file size.
func TestLargeFileBoundedMemory(t *testing.T) {
	r := newRig(t, 6, 4, 2, 1<<20)
	const size = 64 << 20
	gen := func() io.Reader { return io.LimitReader(mrand.NewChaCha8([32]byte{1}), size) }
	want := sha256.New()
	io.Copy(want, gen())

	// Measure what is live, not garbage the collector has yet to reach.
	defer debug.SetGCPercent(debug.SetGCPercent(25))
	runtime.GC()
	var base runtime.MemStats
	runtime.ReadMemStats(&base)
	var peak uint64
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Go(func() {
		for {
			var ms runtime.MemStats
			runtime.ReadMemStats(&ms)
			peak = max(peak, ms.HeapInuse)
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	})
	p := filepath.Join(r.mnt, "big")
	f, err := os.Create(p)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(f, gen()); err != nil {
		t.Fatal(err)
	}
	if err := f.Sync(); err != nil {
		t.Fatal(err)
	}
	f.Close()
	f, err = os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	got := sha256.New()
	n, err := io.Copy(got, f)
	f.Close()
	close(stop)
	wg.Wait()
	if err != nil || n != size {
		t.Fatalf("read %d bytes: %v", n, err)
	}
	if !bytes.Equal(got.Sum(nil), want.Sum(nil)) {
		t.Fatal("64 MiB file read back differs")
	}
	grew := int64(peak) - int64(base.HeapInuse)
	t.Logf("heap in use grew by %d MiB at most for a %d MiB file", grew>>20, size>>20)
	if grew > 40<<20 {
		t.Fatalf("heap grew by %d MiB for a %d MiB file: not bounded", grew>>20, size>>20)
	}
}

// TestFullBackendENOSPC: two of six backends are full, so a segment cannot
// get k+1 = 5 shards: fsync fails with ENOSPC, the mount keeps working and
// the file never appears in the store.
func TestFullBackendENOSPC(t *testing.T) {
	r := newRig(t, 6, 4, 2, 1<<20, 0, 1)
	p := filepath.Join(r.mnt, "toobig")
	err := writeSync(p, randBytes(8<<20))
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("write+fsync with full backends: %v, want ENOSPC", err)
	}
	if _, ok := r.fresh(t).Lookup("toobig"); ok {
		t.Fatal("a file that failed to store is in the catalog")
	}
	if err := writeSync(filepath.Join(r.mnt, "small"), []byte("fits")); err != nil {
		t.Fatalf("mount unusable after ENOSPC: %v", err)
	}
}

// TestBackendsDownEIO: with three of six backends gone (m = 2), a read gets
// EIO and the mount survives.
func TestBackendsDownEIO(t *testing.T) {
	r := newRig(t, 6, 4, 2, 64<<10)
	data := randBytes(200 << 10)
	if _, err := r.st.Put(t.Context(), "f", bytes.NewReader(data), 0o644, time.Now()); err != nil {
		t.Fatal(err)
	}
	for _, d := range r.dirs[:3] {
		if err := os.Rename(d, d+".away"); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { os.Rename(d+".away", d) })
	}
	_, err := os.ReadFile(filepath.Join(r.mnt, "f"))
	if !errors.Is(err, syscall.EIO) {
		t.Fatalf("read with 3 of 6 backends gone: %v, want EIO", err)
	}
	for _, d := range r.dirs[:3] {
		os.Rename(d+".away", d)
	}
	got, err := os.ReadFile(filepath.Join(r.mnt, "f"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read after the backends returned: %v", err)
	}
}

var _ = context.Background

// TestStreamingFallbacks: writes that are not a straight append, and a
// rename or unlink while the file is open, abandon the streaming upload;
// the stored file is still exactly what was written, under its final name.
func TestStreamingFallbacks(t *testing.T) {
	r := newRig(t, 6, 4, 2, 64<<10)
	data := randBytes(500 << 10)
	open := func(name string) *os.File {
		t.Helper()
		f, err := os.OpenFile(filepath.Join(r.mnt, name), os.O_CREATE|os.O_RDWR|os.O_TRUNC, 0o644)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	// Appends, then a rewrite near the start, then more appends.
	f := open("rewritten")
	f.Write(data[:300<<10])
	f.WriteAt(data[:10], 0)
	f.WriteAt(data[300<<10:], 300<<10)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// Appends, rename while open, more appends.
	f = open("before")
	f.Write(data[:200<<10])
	if err := os.Rename(filepath.Join(r.mnt, "before"), filepath.Join(r.mnt, "after")); err != nil {
		t.Fatal(err)
	}
	f.Write(data[200<<10:])
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	// Unlinked while open: never stored.
	f = open("gone")
	f.Write(data[:100<<10])
	os.Remove(filepath.Join(r.mnt, "gone"))
	f.Write(data[100<<10:])
	f.Close()
	s := r.fresh(t)
	for _, name := range []string{"rewritten", "after"} {
		if got := get(t, s, name); !bytes.Equal(got, data) {
			t.Errorf("%s: stored %d bytes, not what was written", name, len(got))
		}
	}
	for _, name := range []string{"before", "gone"} {
		if _, ok := s.Lookup(name); ok {
			t.Errorf("%s is in the store", name)
		}
	}
}
