package pack

import (
	"errors"
	"testing"

	"github.com/zerogrid/zerogrid/internal/storage"
	"github.com/zerogrid/zerogrid/internal/storage/backendtest"
	"github.com/zerogrid/zerogrid/internal/storage/dir"
)

func TestConformance(t *testing.T) {
	backendtest.Run(t, func(t *testing.T) storage.Backend {
		b, err := Open("p1", "rack1", t.TempDir(), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { b.Close() })
		return b
	})
}

// Objects survive closing and reopening the directory.
func TestReopen(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b, err := Open("p1", "", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := b.Put(t.Context(), "a.1", []byte("hello")); err != nil {
		t.Fatal(err)
	}
	if _, err := Open("p2", "", dir, nil); err == nil {
		t.Fatal("a second Open of a directory in use succeeded")
	}
	b.Close()
	b, err = Open("p1", "", dir, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	got, err := b.Get(t.Context(), "a.1", 1, 3)
	if err != nil || string(got) != "ell" {
		t.Fatalf("after reopen: %q %v", got, err)
	}
}

// Naming the wrong layout is an error, not a store whose shards all look
// lost: a packed store refuses a directory of shard files and the files
// layout refuses a packed store.
func TestLayoutMismatch(t *testing.T) {
	t.Parallel()
	files, packed := t.TempDir(), t.TempDir()
	d, err := dir.Open("d", "", files, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Put(t.Context(), "s.1", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := Open("p", "", files, nil); !errors.Is(err, ErrOtherLayout) {
		t.Fatalf("pack over a files directory: %v", err)
	}
	p, err := Open("p", "", packed, nil)
	if err != nil {
		t.Fatal(err)
	}
	p.Close()
	if _, err := dir.Open("d", "", packed, nil); !errors.Is(err, dir.ErrOtherLayout) {
		t.Fatalf("files layout over a packed directory: %v", err)
	}
}
