package fusefs

import (
	"bufio"
	"cmp"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"time"
)

// ErrLingering: the mount point is gone, but the kernel keeps the FUSE
// connection open, typically because another mount namespace (a container,
// `ip netns exec`) holds a copy of the mount. The server then never sees
// the end of its request loop; exiting the process closes the connection.
var ErrLingering = errors.New("fusefs: unmounted here, but the FUSE connection is still referenced (another mount namespace?)")

// flushTimeout bounds the uploads of open files at unmount.
const flushTimeout = 5 * time.Minute

// Unmount unmounts srv from mnt. It first uploads every file open for
// writing (FlushAll), so nothing write(2) acknowledged is lost. While
// files are still open the unmount is busy: it retries for busyWait (a
// closing file is uploaded as the kernel releases it), then detaches the
// mount lazily, waits at most loopWait for the last descriptors to close
// and the request loops to end, uploads again what was written meanwhile,
// and returns ErrLingering if the loops did not end. Once the mount is gone
// (nil, ErrLingering or an upload error, which says which file failed) the
// FS's segment loads are cancelled and its read-ahead goroutines have
// ended; after a failed detach the mount still serves.
func Unmount(srv *Server, mnt string, busyWait, loopWait time.Duration) error {
	ctx, cancel := context.WithTimeout(context.Background(), flushTimeout)
	defer cancel()
	flushErr := srv.fsys.FlushAll(ctx)
	deadline := time.Now().Add(busyWait)
	for {
		err := srv.Server.Unmount()
		if err == nil {
			srv.fsys.Close()
			return uploadErr(flushErr)
		}
		if !Mounted(mnt) || time.Now().After(deadline) {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if Mounted(mnt) {
		if out, err := exec.Command("fusermount3", "-u", "-z", mnt).CombinedOutput(); err != nil {
			return fmt.Errorf("detach %s: %w: %s", mnt, err, strings.TrimSpace(string(out)))
		}
	}
	ended := make(chan struct{})
	go func() { srv.Server.Wait(); close(ended) }()
	select {
	case <-ended:
	case <-time.After(loopWait):
		// The goroutine above ends when the kernel drops the connection,
		// at the latest when the process exits.
	}
	flushErr = cmp.Or(srv.fsys.FlushAll(ctx), flushErr)
	srv.fsys.Close()
	select {
	case <-ended:
		return uploadErr(flushErr)
	default:
		return cmp.Or(uploadErr(flushErr), ErrLingering)
	}
}

func uploadErr(err error) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf("unmounted, but a file open for writing was not stored (its data is lost; see the log above): %w", err)
}

// Mounted reports whether mnt is a mount point in this mount namespace.
func Mounted(mnt string) bool {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return false
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		// Field 5 is the mount point, with spaces escaped as \040.
		if fs := strings.Fields(sc.Text()); len(fs) > 4 && strings.ReplaceAll(fs[4], `\040`, " ") == mnt {
			return true
		}
	}
	return false
}
