package fusefs

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/storage"
	"github.com/zerogrid/zerogrid/internal/storage/catalog"
	"github.com/zerogrid/zerogrid/internal/storage/dir"
)

// slowBackend hangs every Get of an object whose name starts with prefix
// until the caller's context ends, and counts those Gets in flight.
type slowBackend struct {
	storage.Backend
	mu       sync.Mutex
	prefix   string
	inflight atomic.Int32
	hung     atomic.Int32
}

func (b *slowBackend) slowPrefix(p string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.prefix = p
}

func (b *slowBackend) Get(ctx context.Context, name string, off, length int64) ([]byte, error) {
	b.mu.Lock()
	slow := b.prefix != "" && strings.HasPrefix(name, b.prefix)
	b.mu.Unlock()
	if !slow {
		return b.Backend.Get(ctx, name, off, length)
	}
	b.inflight.Add(1)
	defer b.inflight.Add(-1)
	b.hung.Add(1)
	<-ctx.Done()
	return nil, ctx.Err()
}

// TestPrefetchStopsWithTheMount: reading the first segment of a file
// starts fetching the second in the background; against a backend that
// never answers, that fetch is still in flight at unmount. Unmount cancels
// it and waits for it: no fetch outlives the mount.
func TestPrefetchStopsWithTheMount(t *testing.T) {
	needFUSE(t)
	root := t.TempDir()
	var slow []*slowBackend
	var bs []storage.Backend
	for i := range 3 {
		d, err := dir.Open(fmt.Sprintf("b%d", i), fmt.Sprintf("rack%d", i), filepath.Join(root, fmt.Sprintf("b%d", i)), nil)
		if err != nil {
			t.Fatal(err)
		}
		sb := &slowBackend{Backend: d}
		slow, bs = append(slow, sb), append(bs, sb)
	}
	mn, err := identity.NewMnemonic(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	secret, err := catalog.StorageSecret(mn)
	if err != nil {
		t.Fatal(err)
	}
	// Segments of 2 MiB: larger than the kernel's read-ahead window (1
	// MiB), so reading the file's first page reads only segment 0.
	st, err := catalog.Init(t.Context(), catalog.Options{Params: storage.Params{K: 2, M: 1, SegmentSize: 2 << 20}, Backends: bs}, secret)
	if err != nil {
		t.Fatal(err)
	}
	data := randBytes(5 << 20)
	if _, err := st.Put(t.Context(), "big", bytes.NewReader(data), 0o644, time.Now()); err != nil {
		t.Fatal(err)
	}
	e, ok := st.Lookup("big")
	if !ok || len(e.Segments) < 2 {
		t.Fatalf("entry %+v", e)
	}
	prefix := "shard-" + e.Segments[1].ID.String()
	for _, sb := range slow {
		sb.slowPrefix(prefix)
	}

	mnt := filepath.Join(root, "mnt")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	srv, err := Mount(mnt, st, Options{CacheDir: filepath.Join(root, "cache")})
	if err != nil {
		t.Fatal(err)
	}
	unmounted := false
	t.Cleanup(func() {
		if !unmounted {
			Unmount(srv, mnt, 5*time.Second, 5*time.Second)
		}
	})
	f, err := os.Open(filepath.Join(mnt, "big"))
	if err != nil {
		t.Fatal(err)
	}
	page := make([]byte, 4096)
	if _, err := f.ReadAt(page, 0); err != nil || !bytes.Equal(page, data[:4096]) {
		t.Fatalf("read the first page: %v", err)
	}
	f.Close()

	inflight := func() int32 {
		var n int32
		for _, sb := range slow {
			n += sb.inflight.Load()
		}
		return n
	}
	deadline := time.Now().Add(20 * time.Second)
	for inflight() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("reading segment 0 did not start fetching segment 1")
		}
		time.Sleep(10 * time.Millisecond)
	}

	if err := Unmount(srv, mnt, 5*time.Second, 5*time.Second); err != nil {
		t.Fatalf("unmount: %v", err)
	}
	unmounted = true
	if n := inflight(); n != 0 {
		t.Fatalf("%d segment fetches still running after unmount", n)
	}
}
