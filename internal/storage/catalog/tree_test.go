package catalog

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"
	"time"
)

func names(es []Entry) []string {
	var out []string
	for _, e := range es {
		n := e.Name
		if e.Dir {
			n += "/"
		}
		out = append(out, n)
	}
	return out
}

// TestTreeOperations runs mkdir, rename, remove and rmdir on a real store
// and reopens it from the backends after each step.
func TestTreeOperations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestStore(t, 6, 2, 2)
	sec := secret(t)
	bs, _ := ts.backends(t)
	s, err := Init(ctx, ts.opts(bs), sec)
	if err != nil {
		t.Fatal(err)
	}
	reopen := func() *Store {
		t.Helper()
		bs, _ := ts.backends(t)
		r, err := Open(ctx, ts.opts(bs), sec)
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	now := time.Now()
	a, b := randBytes(t, 300<<10), randBytes(t, 1000)
	if _, err := s.Put(ctx, "top.txt", bytes.NewReader(a), 0o644, now); err != nil {
		t.Fatal(err)
	}
	if err := s.Mkdir(ctx, "empty", 0o750, now); err != nil {
		t.Fatal(err)
	}
	if err := s.Mkdir(ctx, "d", 0o755, now); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Put(ctx, "d/f", bytes.NewReader(b), 0o600, now); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		err  error
		fn   func() error
	}{
		{"mkdir over a file", ErrNameTaken, func() error { return s.Mkdir(ctx, "top.txt", 0o755, now) }},
		{"mkdir twice", ErrNameTaken, func() error { return s.Mkdir(ctx, "empty", 0o755, now) }},
		{"mkdir without parent", ErrNotFound, func() error { return s.Mkdir(ctx, "no/x", 0o755, now) }},
		{"mkdir under a file", ErrNotDir, func() error { return s.Mkdir(ctx, "top.txt/x", 0o755, now) }},
		{"rmdir non-empty", ErrNotEmpty, func() error { return s.Rmdir(ctx, "d") }},
		{"rmdir a file", ErrNotDir, func() error { return s.Rmdir(ctx, "top.txt") }},
		{"remove a dir", ErrIsDir, func() error { return s.Remove(ctx, "d") }},
		{"remove missing", ErrNotFound, func() error { return s.Remove(ctx, "nope") }},
		{"put over a dir", ErrIsDir, func() error {
			_, err := s.Put(ctx, "d", bytes.NewReader(nil), 0o644, now)
			return err
		}},
		{"rename dir into itself", ErrRenameInto, func() error { return s.Rename(ctx, "d", "d/sub") }},
		{"rename dir over non-empty", ErrNotEmpty, func() error { return s.Rename(ctx, "empty", "d") }},
		{"rename file over dir", ErrIsDir, func() error { return s.Rename(ctx, "top.txt", "empty") }},
	} {
		if err := tc.fn(); !errors.Is(err, tc.err) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.err)
		}
	}
	r := reopen()
	if got, want := names(r.Children("")), []string{"d/", "empty/", "top.txt"}; !slices.Equal(got, want) {
		t.Fatalf("root after reopen: %v, want %v (empty directories persist)", got, want)
	}
	// Rename a directory: its files move, segments untouched.
	if err := s.Rename(ctx, "d", "empty/moved"); err != nil {
		t.Fatal(err)
	}
	r = reopen()
	if got := getBytes(t, r, "empty/moved/f"); !bytes.Equal(got, b) {
		t.Fatal("file under a renamed directory differs")
	}
	if r.IsDir("d") {
		t.Fatal("old directory still there after rename")
	}
	// Rename a file over another file: the replaced file's shards go.
	before := len(ts.snapshot(t))
	if err := s.Rename(ctx, "top.txt", "empty/moved/f"); err != nil {
		t.Fatal(err)
	}
	r = reopen()
	if got := getBytes(t, r, "empty/moved/f"); !bytes.Equal(got, a) {
		t.Fatal("renamed file differs")
	}
	if _, ok := r.Lookup("top.txt"); ok {
		t.Fatal("old name still present")
	}
	if after := len(ts.snapshot(t)); after >= before {
		t.Fatalf("replaced file's shards not deleted: %d objects before, %d after", before, after)
	}
	if err := s.Remove(ctx, "empty/moved/f"); err != nil {
		t.Fatal(err)
	}
	if err := s.Rmdir(ctx, "empty/moved"); err != nil {
		t.Fatal(err)
	}
	if err := s.Rmdir(ctx, "empty"); err != nil {
		t.Fatal(err)
	}
	r = reopen()
	if got := r.List(""); len(got) != 0 {
		t.Fatalf("store not empty: %v", names(got))
	}
	if n := len(ts.snapshot(t)); n > 3*len(ts.dirs) {
		t.Fatalf("%d objects left for an empty store (shards of removed files not deleted?)", n)
	}
}

// TestCatalogVersion: a catalog without directories stays version 1 (older
// readers open it); one with a directory is version 2, and a version 1
// catalog holding a directory is rejected.
func TestCatalogVersion(t *testing.T) {
	t.Parallel()
	files := &Catalog{entries: []Entry{{Name: "a", Mode: 0o644}}}
	p, err := encodeCatalog(files)
	if err != nil {
		t.Fatal(err)
	}
	if p[5] != 1 {
		t.Fatalf("catalog without directories has version %d, want 1", p[5])
	}
	dirs, _ := files.with(Entry{Name: "d", Dir: true, Mode: 0o755})
	p, err = encodeCatalog(dirs)
	if err != nil {
		t.Fatal(err)
	}
	if p[5] != 2 {
		t.Fatalf("catalog with a directory has version %d, want 2", p[5])
	}
	if _, err := decodeCatalog(p); err != nil {
		t.Fatal(err)
	}
	p[5] = 1
	if _, err := decodeCatalog(p); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("version 1 catalog with a directory: %v, want ErrCorrupt", err)
	}
}

func TestChildren(t *testing.T) {
	t.Parallel()
	c := &Catalog{}
	for _, e := range []Entry{{Name: "a"}, {Name: "a-x"}, {Name: "b", Dir: true}, {Name: "b/c/d"}, {Name: "b/e"}, {Name: "b-"}, {Name: "z/y"}} {
		c, _ = c.with(e)
	}
	for dir, want := range map[string][]string{
		"":    {"a", "a-x", "b/", "b-", "z/"},
		"b":   {"b/c/", "b/e"},
		"b/c": {"b/c/d"},
		"z":   {"z/y"},
		"a":   nil,
	} {
		if got := names(c.Children(dir)); !slices.Equal(got, want) {
			t.Errorf("Children(%q) = %v, want %v", dir, got, want)
		}
	}
	if !c.IsDir("z") || !c.IsDir("b/c") || c.IsDir("a") || c.IsDir("nope") {
		t.Fatal("IsDir wrong")
	}
}
