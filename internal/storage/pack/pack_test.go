package pack

import (
	"testing"

	"github.com/zerogrid/zerogrid/internal/storage"
	"github.com/zerogrid/zerogrid/internal/storage/backendtest"
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
