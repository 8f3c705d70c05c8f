// Package backendtest is the conformance suite of storage.Backend (after
// restic's internal/backend/test): every implementation runs Run from its
// own tests, so they all keep one contract. It also offers Faulty, a
// wrapper that injects the failures the pipeline must survive.
package backendtest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/zerogrid/zerogrid/internal/storage"
)

// Run runs the conformance suite. newBackend must return a new, empty
// backend for each call; the suite runs subtests in parallel.
func Run(t *testing.T, newBackend func(t *testing.T) storage.Backend) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b storage.Backend)
	}{
		{"Identity", testIdentity},
		{"PutGet", testPutGet},
		{"Overwrite", testOverwrite},
		{"NoAliasing", testNoAliasing},
		{"Ranges", testRanges},
		{"NotFound", testNotFound},
		{"Delete", testDelete},
		{"List", testList},
		{"InvalidNames", testInvalidNames},
		{"Cancelled", testCancelled},
		{"Concurrent", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, newBackend(t))
		})
	}
}

func pattern(n int, seed byte) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i*7) ^ seed
	}
	return b
}

func mustPut(t *testing.T, b storage.Backend, name string, data []byte) {
	t.Helper()
	if err := b.Put(context.Background(), name, data); err != nil {
		t.Fatalf("Put(%s): %v", name, err)
	}
}

func mustGet(t *testing.T, b storage.Backend, name string) []byte {
	t.Helper()
	got, err := b.Get(context.Background(), name, 0, -1)
	if err != nil {
		t.Fatalf("Get(%s): %v", name, err)
	}
	return got
}

func testIdentity(t *testing.T, b storage.Backend) {
	if b.ID() == "" {
		t.Fatal("ID is empty")
	}
	if err := storage.ValidName(b.ID()); err != nil {
		t.Fatalf("ID %q is not a plain name: %v", b.ID(), err)
	}
}

func testPutGet(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	for _, size := range []int{0, 1, 4095, 64 << 10, 1 << 20} {
		name := fmt.Sprintf("obj-%d", size)
		want := pattern(size, byte(size))
		mustPut(t, b, name, want)
		if got := mustGet(t, b, name); !bytes.Equal(got, want) {
			t.Fatalf("Get(%s): %d bytes differ from the %d put", name, len(got), len(want))
		}
		info, err := b.Stat(ctx, name)
		if err != nil || info.Size != int64(size) || info.Name != name {
			t.Fatalf("Stat(%s) = %+v, %v; want size %d", name, info, err, size)
		}
	}
}

func testOverwrite(t *testing.T, b storage.Backend) {
	mustPut(t, b, "x", pattern(1000, 1))
	mustPut(t, b, "x", pattern(10, 2))
	if got := mustGet(t, b, "x"); !bytes.Equal(got, pattern(10, 2)) {
		t.Fatalf("after overwrite Get = %d bytes, want the second content", len(got))
	}
	mustPut(t, b, "x", pattern(10, 2)) // idempotent repeat
	if got := mustGet(t, b, "x"); !bytes.Equal(got, pattern(10, 2)) {
		t.Fatal("repeating a Put changed the content")
	}
}

func testNoAliasing(t *testing.T, b storage.Backend) {
	data := pattern(100, 3)
	mustPut(t, b, "a", data)
	data[0] ^= 0xff // the backend must not have kept the caller's slice
	got := mustGet(t, b, "a")
	if !bytes.Equal(got, pattern(100, 3)) {
		t.Fatal("changing the slice after Put changed the stored object")
	}
	got[1] ^= 0xff // nor may it hand out its own memory
	if !bytes.Equal(mustGet(t, b, "a"), pattern(100, 3)) {
		t.Fatal("changing a slice returned by Get changed the stored object")
	}
}

func testRanges(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	data := pattern(1000, 4)
	mustPut(t, b, "r", data)
	ok := []struct{ off, n int64 }{{0, 1000}, {0, 0}, {999, 1}, {500, -1}, {1000, -1}, {1000, 0}, {10, 20}}
	for _, r := range ok {
		got, err := b.Get(ctx, "r", r.off, r.n)
		end := r.off + r.n
		if r.n < 0 {
			end = 1000
		}
		if err != nil || !bytes.Equal(got, data[r.off:end]) {
			t.Fatalf("Get(r, %d, %d) = %d bytes, %v; want bytes %d–%d", r.off, r.n, len(got), err, r.off, end)
		}
	}
	bad := []struct{ off, n int64 }{{1001, -1}, {999, 2}, {0, 1001}, {-1, 1}, {1001, 0}}
	for _, r := range bad {
		if _, err := b.Get(ctx, "r", r.off, r.n); !errors.Is(err, storage.ErrRange) {
			t.Fatalf("Get(r, %d, %d): %v, want ErrRange", r.off, r.n, err)
		}
	}
}

func testNotFound(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	if _, err := b.Get(ctx, "missing", 0, -1); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Get(missing): %v, want ErrNotFound", err)
	}
	if _, err := b.Get(ctx, "missing", 5, 1); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("ranged Get(missing): %v, want ErrNotFound", err)
	}
	if _, err := b.Stat(ctx, "missing"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Stat(missing): %v, want ErrNotFound", err)
	}
	if storage.IsRetryable(storage.ErrNotFound) {
		t.Fatal("ErrNotFound is reported as retryable")
	}
}

func testDelete(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	mustPut(t, b, "d", []byte("x"))
	if err := b.Delete(ctx, "d"); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	if _, err := b.Get(ctx, "d", 0, -1); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Get after Delete: %v, want ErrNotFound", err)
	}
	if err := b.Delete(ctx, "d"); err != nil {
		t.Fatalf("second Delete: %v, want nil (idempotent)", err)
	}
	if err := b.Delete(ctx, "never-there"); err != nil {
		t.Fatalf("Delete of a missing name: %v, want nil", err)
	}
}

func list(t *testing.T, b storage.Backend, prefix string) map[string]int64 {
	t.Helper()
	got := map[string]int64{}
	err := b.List(context.Background(), prefix, func(i storage.Info) error {
		if _, dup := got[i.Name]; dup {
			t.Fatalf("List returned %s twice", i.Name)
		}
		got[i.Name] = i.Size
		return nil
	})
	if err != nil {
		t.Fatalf("List(%q): %v", prefix, err)
	}
	return got
}

func testList(t *testing.T, b storage.Backend) {
	if got := list(t, b, ""); len(got) != 0 {
		t.Fatalf("new backend lists %v, want nothing", got)
	}
	for i, name := range []string{"shard-a-1", "shard-a-2", "shard-b-1", "meta-1"} {
		mustPut(t, b, name, pattern(i+1, 0))
	}
	got := list(t, b, "shard-a")
	if len(got) != 2 || got["shard-a-1"] != 1 || got["shard-a-2"] != 2 {
		t.Fatalf("List(shard-a) = %v, want shard-a-1 (1 byte) and shard-a-2 (2 bytes)", got)
	}
	if all := list(t, b, ""); len(all) != 4 {
		t.Fatalf("List(\"\") = %v, want 4 objects", all)
	}
	stop := errors.New("stop")
	calls := 0
	err := b.List(context.Background(), "", func(storage.Info) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("List with a failing callback: %v after %d calls, want the callback's error after 1", err, calls)
	}
	if err := b.Delete(context.Background(), "meta-1"); err != nil {
		t.Fatal(err)
	}
	if all := list(t, b, ""); len(all) != 3 {
		t.Fatalf("after Delete List = %v, want 3 objects", all)
	}
}

func testInvalidNames(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	for _, name := range []string{"", ".", "..", "...", "a/b", "/abs", "../up", `a\b`, ".hidden", "a\x00b", "sp ace", string(make([]byte, storage.MaxNameLen+1))} {
		if err := b.Put(ctx, name, []byte("x")); !errors.Is(err, storage.ErrInvalidName) {
			t.Fatalf("Put(%q): %v, want ErrInvalidName", name, err)
		}
		if _, err := b.Get(ctx, name, 0, -1); !errors.Is(err, storage.ErrInvalidName) {
			t.Fatalf("Get(%q): %v, want ErrInvalidName", name, err)
		}
		if _, err := b.Stat(ctx, name); !errors.Is(err, storage.ErrInvalidName) {
			t.Fatalf("Stat(%q): %v, want ErrInvalidName", name, err)
		}
		if err := b.Delete(ctx, name); !errors.Is(err, storage.ErrInvalidName) {
			t.Fatalf("Delete(%q): %v, want ErrInvalidName", name, err)
		}
	}
	if all := list(t, b, ""); len(all) != 0 {
		t.Fatalf("rejected names left objects: %v", all)
	}
}

func testCancelled(t *testing.T, b storage.Backend) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := b.Put(ctx, "c", []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("Put with a cancelled context: %v, want context.Canceled", err)
	}
	if _, err := b.Stat(context.Background(), "c"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a cancelled Put left an object: Stat = %v", err)
	}
	if _, err := b.Get(ctx, "c", 0, -1); !errors.Is(err, context.Canceled) {
		t.Fatalf("Get with a cancelled context: %v, want context.Canceled", err)
	}
	if err := b.List(ctx, "", func(storage.Info) error { return nil }); !errors.Is(err, context.Canceled) {
		t.Fatalf("List with a cancelled context: %v, want context.Canceled", err)
	}
}

// testConcurrent races writers and readers on shared names: a reader must
// see a whole version or nothing, never a mix.
func testConcurrent(t *testing.T, b storage.Backend) {
	ctx := context.Background()
	const writers, rounds = 4, 10
	versions := make([][]byte, writers)
	for w := range versions {
		versions[w] = pattern(8<<10, byte(w+1))
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for i := range rounds {
				if err := b.Put(ctx, fmt.Sprintf("c-%d", i%3), versions[w]); err != nil {
					t.Errorf("Put: %v", err)
				}
			}
		})
		wg.Go(func() {
			for i := range rounds {
				got, err := b.Get(ctx, fmt.Sprintf("c-%d", i%3), 0, -1)
				if errors.Is(err, storage.ErrNotFound) {
					continue
				}
				if err != nil {
					t.Errorf("Get: %v", err)
					continue
				}
				if !slices.ContainsFunc(versions, func(v []byte) bool { return bytes.Equal(v, got) }) {
					t.Errorf("Get returned %d bytes that match no version written", len(got))
				}
			}
		})
	}
	wg.Wait()
}
