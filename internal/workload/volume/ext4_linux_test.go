package volume

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/workload"
	"github.com/zerogrid/zerogrid/internal/workload/workloadtest"
)

// needLoop skips a test that needs real loop-mounted ext4 volumes.
func needLoop(t *testing.T) {
	t.Helper()
	if err := probeLoop(); err != nil {
		t.Skipf("size-limited volumes unavailable: %v", err)
	}
}

func TestConformanceExt4(t *testing.T) {
	t.Parallel()
	needLoop(t)
	workloadtest.Run(t, harness(nil))
}

// TestSurvivesRestartAndReboot: data stays across a new manager (agent
// restart) and across an unmount (what a reboot leaves), and grows.
func TestSurvivesRestartAndReboot(t *testing.T) {
	t.Parallel()
	needLoop(t)
	dir := t.TempDir()
	m := newManager(t, dir, nil)
	t.Cleanup(func() { removeAll(t, m) })
	d := workload.Deployment{ID: 5}
	ctx := context.Background()
	if err := m.Provision(ctx, d, vol("data", 8<<20)); err != nil {
		t.Fatal(err)
	}
	p, _ := m.HostPath(ctx, d, "data")
	if err := os.WriteFile(filepath.Join(p, "keep"), []byte("v1"), 0o600); err != nil {
		t.Fatal(err)
	}
	ref := workload.Ref{Deployment: 5, Name: "data"}
	m2 := newManager(t, dir, nil)
	if err := m2.Provision(ctx, d, vol("data", 8<<20)); err != nil {
		t.Fatal(err)
	}
	if err := unmount(m2.layout.mnt(ref)); err != nil { // as after a reboot
		t.Fatal(err)
	}
	if _, err := m2.HostPath(ctx, d, "data"); !errors.Is(err, ErrNotMounted) {
		t.Fatalf("HostPath of an unmounted volume = %v, want ErrNotMounted", err)
	}
	if err := m2.Update(ctx, d, vol("data", 16<<20)); err != nil {
		t.Fatalf("remount and grow: %v", err)
	}
	p, _ = m2.HostPath(ctx, d, "data")
	if b, err := os.ReadFile(filepath.Join(p, "keep")); err != nil || string(b) != "v1" {
		t.Fatalf("data after restart, remount and grow: %q, %v", b, err)
	}
	var fs syscall.Statfs_t
	if err := syscall.Statfs(p, &fs); err != nil || uint64(fs.Blocks)*uint64(fs.Bsize) < 12<<20 {
		t.Fatalf("filesystem size after growing to 16 MiB: %d bytes, %v", uint64(fs.Blocks)*uint64(fs.Bsize), err)
	}
	err := m2.Update(ctx, d, vol("data", 8<<20))
	if !workload.IsPermanent(err) || !errors.Is(err, ErrShrink) {
		t.Fatalf("shrinking = %v, want a permanent ErrShrink", err)
	}
}

func TestSizeIsEnforced(t *testing.T) {
	t.Parallel()
	needLoop(t)
	m := managerFor(t, nil)
	d := workload.Deployment{ID: 1}
	if err := m.Provision(context.Background(), d, vol("data", 8<<20)); err != nil {
		t.Fatal(err)
	}
	p, err := m.HostPath(context.Background(), d, "data")
	if err != nil {
		t.Fatal(err)
	}
	err = os.WriteFile(filepath.Join(p, "big"), bytes.Repeat([]byte{1}, 9<<20), 0o600)
	if !errors.Is(err, syscall.ENOSPC) {
		t.Fatalf("writing 9 MiB into an 8 MiB volume: %v, want ENOSPC", err)
	}
	fi, err := os.Stat(m.layout.image(workload.Ref{Deployment: 1, Name: "data"}))
	if err != nil || fi.Size() != 8<<20 {
		t.Fatalf("image: %v, size %d, want 8 MiB", err, fi.Size())
	}
}

func TestDeprovisionRemovesEverything(t *testing.T) {
	t.Parallel()
	needLoop(t)
	m := managerFor(t, nil)
	d := workload.Deployment{ID: 8}
	ctx := context.Background()
	if err := m.Provision(ctx, d, vol("data", 8<<20)); err != nil {
		t.Fatal(err)
	}
	ref := workload.Ref{Deployment: 8, Name: "data"}
	image := m.layout.image(ref)
	if dev, _ := loopFor(image); dev == "" {
		t.Fatal("no loop device backs the image")
	}
	if err := m.Deprovision(ctx, d, "data"); err != nil {
		t.Fatal(err)
	}
	if _, mounted, _ := mountSource(m.layout.mnt(ref)); mounted {
		t.Error("still mounted")
	}
	if dev, _ := detached(image, 2*time.Second); dev != "" {
		t.Errorf("loop device %s still attached to the deleted image", dev)
	}
	if _, err := os.Stat(m.layout.dir(workload.Ref{Deployment: 8})); !os.IsNotExist(err) {
		t.Errorf("deployment directory left behind: %v", err)
	}
}
