package volume

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zerogrid/zerogrid/internal/atomicfile"
	"github.com/zerogrid/zerogrid/internal/workload/mountinfo"
)

// tools are the programs a size-limited volume needs (Debian packages
// e2fsprogs and mount).
var tools = []string{"mkfs.ext4", "e2fsck", "resize2fs", "losetup", "mount"}

// probeLoop reports why loop-mounted ext4 volumes cannot be made on this
// machine, or nil when they can.
func probeLoop() error {
	if os.Geteuid() != 0 {
		return errors.New("not running as root, which mounting volumes needs")
	}
	if _, err := os.Stat("/dev/loop-control"); err != nil {
		return errors.New("no loop devices (/dev/loop-control is missing: load the loop kernel module)")
	}
	for _, t := range tools {
		if _, err := exec.LookPath(t); err != nil {
			return fmt.Errorf("%s is not installed (Debian packages e2fsprogs, mount)", t)
		}
	}
	return nil
}

// run runs a tool and returns its error with its output.
func run(ctx context.Context, name string, args ...string) error {
	out, err := exec.CommandContext(ctx, name, args...).CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return fmt.Errorf("%s: %w", name, ctx.Err())
		}
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}

// makeImage creates a sparse file of size bytes holding an empty ext4
// filesystem at path. It formats a temporary file and renames it, so an
// image at path is always formatted.
func makeImage(ctx context.Context, path string, size uint64) error {
	f, err := atomicfile.Create(path, 0o600)
	if err != nil {
		return err
	}
	defer f.Abort() // no-op after Commit
	if err := f.Truncate(int64(size)); err != nil {
		return err
	}
	if err := run(ctx, "mkfs.ext4", "-q", "-F", "-m", "0", "-L", "zgvol",
		"-E", "lazy_itable_init=1,lazy_journal_init=1,root_owner=0:0", f.Name()); err != nil {
		return err
	}
	return f.Commit()
}

// mountImage mounts the ext4 image at mnt, unless it is mounted there
// already. A loop device that still backs the image (the agent restarted,
// or another mount namespace holds it) is reused, so one image is never
// attached twice; otherwise the image is checked with e2fsck and attached
// to a new loop device.
func mountImage(ctx context.Context, image, mnt string) (adopted bool, err error) {
	if _, ok, err := mountSource(mnt); err != nil || ok {
		return ok, err
	}
	if err := os.MkdirAll(mnt, 0o700); err != nil {
		return false, err
	}
	if dev, err := detached(image, time.Second); err != nil || dev != "" {
		if err != nil {
			return false, err
		}
		if err := unix.Mount(dev, mnt, "ext4", unix.MS_NODEV|unix.MS_NOSUID, ""); err != nil {
			return false, fmt.Errorf("mount %s (backing %s) on %s: %w", dev, image, mnt, err)
		}
		return true, nil
	}
	if err := fsck(ctx, image); err != nil {
		return false, err
	}
	return false, run(ctx, "mount", "-t", "ext4", "-o", "loop,nodev,nosuid", image, mnt)
}

// fsck repairs what an unclean shutdown left; exit codes 0 and 1 mean the
// filesystem is fine now.
func fsck(ctx context.Context, image string) error {
	out, err := exec.CommandContext(ctx, "e2fsck", "-p", image).CombinedOutput()
	var ee *exec.ExitError
	if errors.As(err, &ee) && ee.ExitCode() == 1 {
		return nil
	}
	if err != nil {
		return fmt.Errorf("e2fsck %s: %v: %s", image, err, bytes.TrimSpace(out))
	}
	return nil
}

// unmount unmounts mnt if it is a mount point.
func unmount(mnt string) error {
	if _, ok, err := mountSource(mnt); err != nil || !ok {
		return err
	}
	if err := unix.Unmount(mnt, 0); err != nil {
		return fmt.Errorf("unmount %s: %w", mnt, err)
	}
	return nil
}

// grow enlarges the image mounted at mnt to size bytes. It resizes online
// where it can; without CAP_SYS_RESOURCE (some sandboxes) it unmounts,
// resizes offline and mounts again, but only when nothing else (a
// container's mount namespace) still holds the filesystem.
func grow(ctx context.Context, image, mnt string, size uint64) error {
	dev, ok, err := mountSource(mnt)
	if err != nil {
		return err
	}
	if !ok {
		return ErrNotMounted
	}
	if err := os.Truncate(image, int64(size)); err != nil {
		return err
	}
	if err := run(ctx, "losetup", "-c", dev); err != nil {
		return err
	}
	err = run(ctx, "resize2fs", dev)
	if err == nil || !strings.Contains(err.Error(), "Permission denied") {
		return err
	}
	return growOffline(ctx, image, mnt)
}

func growOffline(ctx context.Context, image, mnt string) error {
	if err := unmount(mnt); err != nil {
		return err
	}
	if dev, err := detached(image, time.Second); err != nil || dev != "" {
		// Remount what we unmounted before reporting why we cannot go on.
		_, merr := mountImage(ctx, image, mnt)
		return errors.Join(fmt.Errorf("%w: online resizing is not permitted here and %s is still used (by a container): stop the containers that mount it, then retry", ErrInUse, dev), err, merr)
	}
	err := run(ctx, "e2fsck", "-f", "-p", image)
	if err == nil {
		err = run(ctx, "resize2fs", image)
	}
	_, merr := mountImage(ctx, image, mnt)
	return errors.Join(err, merr)
}

// detached waits up to timeout for the loop device of image to go away
// (autoclear detaches it once its last mount is gone) and returns the one
// still attached, or "".
func detached(image string, timeout time.Duration) (string, error) {
	deadline := time.Now().Add(timeout)
	for {
		dev, err := loopFor(image)
		if err != nil || dev == "" || time.Now().After(deadline) {
			return dev, err
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// loopFor returns the loop device backed by image, or "".
func loopFor(image string) (string, error) {
	files, err := filepath.Glob("/sys/block/loop*/loop/backing_file")
	if err != nil {
		return "", err
	}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			continue // detached meanwhile
		}
		if strings.TrimSpace(string(b)) == image {
			return "/dev/" + filepath.Base(filepath.Dir(filepath.Dir(f))), nil
		}
	}
	return "", nil
}

// mountSource returns the source of the filesystem mounted at dir (the
// topmost one), and whether there is one.
func mountSource(dir string) (source string, ok bool, err error) {
	m, ok, err := mountinfo.At(dir)
	return m.Source, ok, err
}
