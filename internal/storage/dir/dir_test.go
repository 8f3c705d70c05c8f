package dir_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/zerogrid/zerogrid/internal/storage"
	"github.com/zerogrid/zerogrid/internal/storage/backendtest"
	"github.com/zerogrid/zerogrid/internal/storage/dir"
)

func open(t *testing.T, root string) *dir.Backend {
	t.Helper()
	b, err := dir.Open("d1", "rack1", root, nil)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestConformance(t *testing.T) {
	t.Parallel()
	backendtest.Run(t, func(t *testing.T) storage.Backend { return open(t, t.TempDir()) })
}

func TestOpenCreatesPrivateDirectory(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "a", "b")
	b := open(t, root)
	st, err := os.Stat(root)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("root: %v, %v; want a directory with mode 0700", st, err)
	}
	if b.Root() != root {
		t.Fatalf("Root = %s, want %s", b.Root(), root)
	}
}

func TestPutLeavesOnlyTheObject(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	b := open(t, root)
	if err := b.Put(context.Background(), "obj", []byte("content")); err != nil {
		t.Fatal(err)
	}
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != "obj" {
		t.Fatalf("directory holds %v, want only obj (no temporary file)", entries)
	}
	st, err := os.Stat(filepath.Join(root, "obj"))
	if err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("obj: %v, %v; want mode 0600", st, err)
	}
}

func TestListSkipsForeignFiles(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	b := open(t, root)
	// A temporary file left by a crash, a directory and an invalid name.
	for _, name := range []string{".obj.tmp-123", "with space"} {
		if err := os.WriteFile(filepath.Join(root, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Mkdir(filepath.Join(root, "sub"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(context.Background(), "real", []byte("x")); err != nil {
		t.Fatal(err)
	}
	var names []string
	err := b.List(context.Background(), "", func(i storage.Info) error { names = append(names, i.Name); return nil })
	if err != nil || len(names) != 1 || names[0] != "real" {
		t.Fatalf("List = %v, %v; want [real]", names, err)
	}
	if _, err := b.Stat(context.Background(), "sub"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Stat(sub) on a directory: %v, want ErrNotFound", err)
	}
}

func TestMissingRootIsUnavailable(t *testing.T) {
	t.Parallel()
	root := filepath.Join(t.TempDir(), "disk")
	b := open(t, root)
	ctx := context.Background()
	if err := b.Put(ctx, "x", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := os.RemoveAll(root); err != nil { // the disk went away
		t.Fatal(err)
	}
	if err := b.Put(ctx, "y", []byte("y")); !errors.Is(err, storage.ErrUnavailable) || !storage.IsRetryable(err) {
		t.Fatalf("Put: %v, want a retryable ErrUnavailable", err)
	}
	if _, err := b.Get(ctx, "x", 0, -1); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Get: %v, want ErrUnavailable, not ErrNotFound", err)
	}
	if _, err := b.Stat(ctx, "x"); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Stat: %v, want ErrUnavailable", err)
	}
	if err := b.Delete(ctx, "x"); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("Delete: %v, want ErrUnavailable", err)
	}
	if err := b.List(ctx, "", func(storage.Info) error { return nil }); !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("List: %v, want ErrUnavailable", err)
	}
}

func TestOverwriteIsAtomicOnDisk(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	b := open(t, root)
	ctx := context.Background()
	if err := b.Put(ctx, "o", bytes.Repeat([]byte("a"), 1<<16)); err != nil {
		t.Fatal(err)
	}
	before, _ := os.Stat(filepath.Join(root, "o"))
	if err := b.Put(ctx, "o", []byte("b")); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(filepath.Join(root, "o"))
	// A rename gives a new inode; writing in place would keep the old one,
	// and a reader could then see a torn file.
	if os.SameFile(before, after) {
		t.Fatal("overwrite wrote the file in place instead of renaming a new one over it")
	}
}
