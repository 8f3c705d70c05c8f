package atomicfile

import (
	"errors"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"
)

// crash stands for the process dying: a step panics with it, so nothing
// after that step runs, cleanup included.
type crash struct{}

// recorder runs the real steps, logs them, and crashes at one of them
// (before it runs; "" for none). Steps after a crash never run.
type recorder struct {
	log     []string
	crashAt string
}

func (r *recorder) steps() *steps {
	step := func(name string) {
		if name == r.crashAt {
			panic(crash{})
		}
		r.log = append(r.log, name)
	}
	return &steps{
		syncFile: func(f *os.File) error { step("sync file"); return real.syncFile(f) },
		rename:   func(from, to string) error { step("rename"); return real.rename(from, to) },
		syncDir:  func(dir string) error { step("sync dir " + dir); return real.syncDir(dir) },
	}
}

// run replaces path with data, returning whether it crashed.
func (r *recorder) run(t *testing.T, path string, write func(io.Writer) error) (crashed bool) {
	t.Helper()
	defer func() {
		if v := recover(); v != nil {
			if _, ok := v.(crash); !ok {
				panic(v)
			}
			crashed = true
		}
	}()
	if err := writeWith(path, 0o600, write, r.steps()); err != nil {
		t.Fatalf("write: %v", err)
	}
	return false
}

func read(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestStepsInOrder: the file is fsynced before the rename, and the
// directory holding the target after it.
func TestStepsInOrder(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	r := &recorder{}
	r.run(t, path, func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err })
	want := []string{"sync file", "rename", "sync dir " + dir}
	if !slices.Equal(r.log, want) {
		t.Fatalf("steps %q, want %q", r.log, want)
	}
	if got := read(t, path); got != "new" {
		t.Fatalf("content %q", got)
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o600 {
		t.Fatalf("mode %v, want 0600", st.Mode().Perm())
	}
}

// TestCrashLeavesOldOrNew: a crash at any point (while writing, before any
// step) leaves the old content complete before the rename and the new
// content complete after it; the leftover temporary file is found and
// removed by RemoveTemps.
func TestCrashLeavesOldOrNew(t *testing.T) {
	t.Parallel()
	old, new := "old content, complete", "new content, also complete and longer"
	for _, tc := range []struct {
		crashAt string // "" with a crash while writing
		want    string
	}{
		{"", old},
		{"sync file", old},
		{"rename", old},
		{"sync dir", new},
	} {
		dir := t.TempDir()
		path := filepath.Join(dir, "state")
		if err := WriteFile(path, []byte(old), 0o600); err != nil {
			t.Fatal(err)
		}
		r := &recorder{crashAt: tc.crashAt}
		if tc.crashAt == "sync dir" {
			r.crashAt = "sync dir " + dir
		}
		crashed := r.run(t, path, func(w io.Writer) error {
			if _, err := io.WriteString(w, new[:10]); err != nil {
				return err
			}
			if tc.crashAt == "" {
				panic(crash{}) // half written
			}
			_, err := io.WriteString(w, new[10:])
			return err
		})
		if !crashed {
			t.Fatalf("crash at %q: no crash", tc.crashAt)
		}
		if got := read(t, path); got != tc.want {
			t.Errorf("crash at %q: content %q, want %q", tc.crashAt, got, tc.want)
		}
		if err := RemoveTemps(dir); err != nil {
			t.Fatal(err)
		}
		if des, _ := os.ReadDir(dir); len(des) != 1 {
			t.Errorf("crash at %q: %d files left after RemoveTemps, want 1", tc.crashAt, len(des))
		}
	}
}

// TestFailedWriteChangesNothing: an error from the writer or a step leaves
// the old file and no temporary file.
func TestFailedWriteChangesNothing(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "state")
	if err := WriteFile(path, []byte("old"), 0o644); err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := Write(path, 0o644, func(w io.Writer) error { io.WriteString(w, "partial"); return boom }); !errors.Is(err, boom) {
		t.Fatalf("Write: %v, want boom", err)
	}
	failSync := &steps{syncFile: func(*os.File) error { return boom }, rename: real.rename, syncDir: real.syncDir}
	if err := writeWith(path, 0o644, func(w io.Writer) error { _, err := io.WriteString(w, "new"); return err }, failSync); !errors.Is(err, boom) {
		t.Fatalf("failed fsync: %v, want boom", err)
	}
	if got := read(t, path); got != "old" {
		t.Fatalf("content %q after failed writes", got)
	}
	if des, _ := os.ReadDir(dir); len(des) != 1 {
		t.Fatalf("%d files in the directory, want 1", len(des))
	}
	st, _ := os.Stat(path)
	if st.Mode().Perm() != 0o644 {
		t.Fatalf("mode %v, want 0644", st.Mode().Perm())
	}
}

// TestWriteNewNeverReplaces: WriteNew creates, and refuses an existing
// name with fs.ErrExist, leaving it as it was.
func TestWriteNewNeverReplaces(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "key")
	if err := WriteNew(path, []byte("first"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := WriteNew(path, []byte("second"), 0o600); !errors.Is(err, fs.ErrExist) {
		t.Fatalf("second WriteNew: %v, want fs.ErrExist", err)
	}
	if got := read(t, path); got != "first" {
		t.Fatalf("content %q", got)
	}
	if des, _ := os.ReadDir(dir); len(des) != 1 {
		t.Fatalf("%d files in the directory, want 1", len(des))
	}
}
