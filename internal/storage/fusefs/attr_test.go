package fusefs

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func statT(t *testing.T, p string) *syscall.Stat_t {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		t.Fatalf("lstat %s: %v", p, err)
	}
	return &st
}

// TestAttributesPersist: chmod, chown and utimensat on files and
// directories change what stat shows and what the store holds.
func TestAttributesPersist(t *testing.T) {
	r := newRig(t, 6, 4, 2, 64<<10)
	m := r.mnt
	f, d := filepath.Join(m, "f"), filepath.Join(m, "d")
	if err := writeSync(f, []byte("content")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	at, mt := time.Date(2001, 2, 3, 4, 5, 6, 7000, time.UTC), time.Date(2002, 3, 4, 5, 6, 7, 8000, time.UTC)
	for _, p := range []string{f, d} {
		if err := syscall.Chmod(p, 0o1750); err != nil {
			t.Fatalf("chmod %s: %v", p, err)
		}
		if err := os.Chown(p, 1000, 2000); err != nil {
			t.Fatalf("chown %s: %v", p, err)
		}
		if err := os.Chtimes(p, at, mt); err != nil {
			t.Fatalf("utimensat %s: %v", p, err)
		}
		st := statT(t, p)
		if st.Mode&0o7777 != 0o1750 || st.Uid != 1000 || st.Gid != 2000 {
			t.Errorf("%s: mode %o uid %d gid %d after chmod/chown", p, st.Mode&0o7777, st.Uid, st.Gid)
		}
		if got := time.Unix(st.Mtim.Unix()); !got.Equal(mt) {
			t.Errorf("%s: mtime %v, want %v", p, got, mt)
		}
		if got := time.Unix(st.Atim.Unix()); !got.Equal(at) {
			t.Errorf("%s: atime %v, want %v", p, got, at)
		}
	}
	s := r.fresh(t)
	for _, name := range []string{"f", "d"} {
		e, ok := s.Lookup(name)
		if !ok {
			t.Fatalf("%s not in the store", name)
		}
		if e.Mode != 0o1750 || e.UID != 1000 || e.GID != 2000 || e.MTime != mt.UnixNano() || e.ATime != at.UnixNano() {
			t.Errorf("store entry of %s: %+v", name, e)
		}
		if e.CTime < time.Now().Add(-time.Minute).UnixNano() {
			t.Errorf("%s: ctime %v not set by the change", name, time.Unix(0, e.CTime))
		}
	}
	// cp -p keeps mode and times (it failed silently before).
	src := filepath.Join(t.TempDir(), "src")
	os.WriteFile(src, []byte("x"), 0o640)
	os.Chtimes(src, at, mt)
	if out, err := exec.Command("cp", "-p", src, filepath.Join(m, "copy")).CombinedOutput(); err != nil {
		t.Fatalf("cp -p: %v %s", err, out)
	}
	if e, _ := r.fresh(t).Lookup("copy"); e.Mode != 0o640 || e.MTime != mt.UnixNano() {
		t.Errorf("cp -p stored mode %o mtime %v", e.Mode, time.Unix(0, e.MTime))
	}
	// Mode 0 is mode 0.
	z, err := os.OpenFile(filepath.Join(m, "zero"), os.O_CREATE|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	z.Close()
	if st := statT(t, filepath.Join(m, "zero")); st.Mode&0o7777 != 0 {
		t.Errorf("file created with mode 0 shows %o", st.Mode&0o7777)
	}
}

// TestNamesAndTimes: components over 255 bytes are ENAMETOOLONG, paths
// over 1024 bytes work, new directories and the root have current times,
// and a directory's mtime and ctime move when its entries change.
func TestNamesAndTimes(t *testing.T) {
	r := newRig(t, 6, 4, 2, 64<<10)
	m := r.mnt
	long := strings.Repeat("n", 256)
	if err := os.WriteFile(filepath.Join(m, long), nil, 0o644); !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Errorf("create with a 256-byte name: %v, want ENAMETOOLONG", err)
	}
	if err := os.Mkdir(filepath.Join(m, long), 0o755); !errors.Is(err, syscall.ENAMETOOLONG) {
		t.Errorf("mkdir with a 256-byte name: %v, want ENAMETOOLONG", err)
	}
	if err := os.WriteFile(filepath.Join(m, long[:255]), []byte("ok"), 0o644); err != nil {
		t.Errorf("create with a 255-byte name: %v", err)
	}
	deep := m
	for range 8 { // 8 × 201 bytes: over 1024, under 4096
		deep = filepath.Join(deep, strings.Repeat("d", 200))
	}
	if err := os.MkdirAll(deep, 0o755); err != nil {
		t.Fatalf("mkdir -p of a %d-byte path: %v", len(deep)-len(m), err)
	}
	if err := writeSync(filepath.Join(deep, "f"), []byte("deep")); err != nil {
		t.Fatalf("write at a %d-byte path: %v", len(deep)-len(m), err)
	}
	if b, err := os.ReadFile(filepath.Join(deep, "f")); err != nil || string(b) != "deep" {
		t.Fatalf("read at a long path: %v", err)
	}

	recent := func(what string, ts syscall.Timespec) {
		t.Helper()
		if got := time.Unix(ts.Unix()); time.Since(got) > time.Minute || time.Until(got) > time.Minute {
			t.Errorf("%s: %v, want about now", what, got)
		}
	}
	recent("root mtime", statT(t, m).Mtim)
	d := filepath.Join(m, "dir")
	if err := os.Mkdir(d, 0o755); err != nil {
		t.Fatal(err)
	}
	recent("new directory mtime", statT(t, d).Mtim)
	recent("new directory ctime", statT(t, d).Ctim)
	steps := []struct {
		what, dir string
		do        func() error
	}{
		{"create", d, func() error { return os.WriteFile(filepath.Join(d, "a"), nil, 0o644) }},
		{"mkdir", d, func() error { return os.Mkdir(filepath.Join(d, "sub"), 0o755) }},
		{"rename within", d, func() error { return os.Rename(filepath.Join(d, "a"), filepath.Join(d, "b")) }},
		{"rename out of", d, func() error { return os.Rename(filepath.Join(d, "b"), filepath.Join(m, "b")) }},
		{"rename into root", m, func() error { return os.Rename(filepath.Join(m, "b"), filepath.Join(m, "c")) }},
		{"unlink", m, func() error { return os.Remove(filepath.Join(m, "c")) }},
		{"rmdir", d, func() error { return os.Remove(filepath.Join(d, "sub")) }},
		{"symlink", d, func() error { return os.Symlink("t", filepath.Join(d, "l")) }},
	}
	for _, s := range steps {
		before := statT(t, s.dir)
		time.Sleep(5 * time.Millisecond)
		if err := s.do(); err != nil {
			t.Fatalf("%s: %v", s.what, err)
		}
		after := statT(t, s.dir)
		if after.Mtim.Nano() <= before.Mtim.Nano() || after.Ctim.Nano() <= before.Ctim.Nano() {
			t.Errorf("%s: %s mtime/ctime did not move (%v → %v)", s.what, s.dir, time.Unix(before.Mtim.Unix()), time.Unix(after.Mtim.Unix()))
		}
	}
}

// TestSymlinks: symbolic links are created, read, followed, renamed,
// removed and stored; hard links and device nodes are refused.
func TestSymlinks(t *testing.T) {
	r := newRig(t, 6, 4, 2, 64<<10)
	m := r.mnt
	if err := writeSync(filepath.Join(m, "target"), []byte("pointed at")); err != nil {
		t.Fatal(err)
	}
	l := filepath.Join(m, "link")
	if err := os.Symlink("target", l); err != nil {
		t.Fatalf("symlink: %v", err)
	}
	if got, err := os.Readlink(l); err != nil || got != "target" {
		t.Fatalf("readlink: %q %v", got, err)
	}
	if fi, err := os.Lstat(l); err != nil || fi.Mode()&os.ModeSymlink == 0 || fi.Size() != int64(len("target")) {
		t.Fatalf("lstat of the link: %v %v", fi, err)
	}
	if b, err := os.ReadFile(l); err != nil || string(b) != "pointed at" {
		t.Fatalf("read through the link: %q %v", b, err)
	}
	if err := os.Symlink("/anywhere/../at all", filepath.Join(m, "dangling")); err != nil {
		t.Fatalf("dangling symlink: %v", err)
	}
	if err := os.Symlink("x", l); !errors.Is(err, syscall.EEXIST) {
		t.Fatalf("symlink over an existing name: %v, want EEXIST", err)
	}
	if err := os.Rename(l, filepath.Join(m, "moved")); err != nil {
		t.Fatalf("rename of a link: %v", err)
	}
	ents, err := os.ReadDir(m)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() == "moved" && e.Type() != os.ModeSymlink {
			t.Errorf("readdir type of the link: %v", e.Type())
		}
	}
	if e, ok := r.fresh(t).Lookup("moved"); !ok || e.Link != "target" {
		t.Fatalf("store entry of the link: %+v %v", e, ok)
	}
	if err := os.Remove(filepath.Join(m, "dangling")); err != nil {
		t.Fatalf("unlink of a link: %v", err)
	}
	if _, ok := r.fresh(t).Lookup("dangling"); ok {
		t.Fatal("removed link still stored")
	}
	if err := os.Link(filepath.Join(m, "target"), filepath.Join(m, "hard")); !errors.Is(err, syscall.ENOTSUP) && !errors.Is(err, syscall.EPERM) {
		t.Errorf("hard link: %v, want EOPNOTSUPP or EPERM", err)
	}
	if err := syscall.Mkfifo(filepath.Join(m, "fifo"), 0o644); !errors.Is(err, syscall.ENOTSUP) && !errors.Is(err, syscall.EPERM) {
		t.Errorf("mkfifo: %v, want EOPNOTSUPP or EPERM", err)
	}
}
