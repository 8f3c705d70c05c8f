package dir_test

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"

	"github.com/zerogrid/zerogrid/internal/storage"
)

// TestFullDiskIsErrFull puts shards on a 1 MiB tmpfs until it fills: the
// backend must say ErrFull (ENOSPC for a mount) and leave no partial object
// or temporary file behind.
func TestFullDiskIsErrFull(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	if err := syscall.Mount("tmpfs", root, "tmpfs", 0, "size=1m,mode=0700"); err != nil {
		t.Skipf("needs root and a tmpfs mount (CAP_SYS_ADMIN): %v", err)
	}
	t.Cleanup(func() {
		if err := syscall.Unmount(root, 0); err != nil {
			t.Errorf("unmount %s: %v", root, err)
		}
	})
	b := open(t, root)
	ctx := context.Background()
	if err := b.Put(ctx, "small", make([]byte, 256<<10)); err != nil {
		t.Fatal(err)
	}
	err := b.Put(ctx, "big", make([]byte, 2<<20))
	if !errors.Is(err, storage.ErrFull) || storage.IsRetryable(err) {
		t.Fatalf("Put beyond the disk: %v, want ErrFull (not retryable)", err)
	}
	if _, err := b.Stat(ctx, "big"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the failed Put left an object: %v", err)
	}
	entries, _ := os.ReadDir(root)
	if len(entries) != 1 {
		t.Fatalf("directory holds %d entries after a failed Put, want 1 (no temporary file)", len(entries))
	}
}
