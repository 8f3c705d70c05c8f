package fusefs

import (
	"bufio"
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

// Unmount unmounts srv from mnt. While files are open it retries for
// busyWait (the kernel releases them, which uploads what they wrote), then
// detaches the mount lazily. It waits at most loopWait more for the
// server's request loops to end, and returns ErrLingering if they do not.
// Once the mount is gone (nil or ErrLingering) the FS's segment loads are
// cancelled and its read-ahead goroutines have ended; after any other
// error the mount still serves.
func Unmount(srv *Server, mnt string, busyWait, loopWait time.Duration) error {
	done := make(chan error, 1)
	go func() { done <- srv.Server.Unmount() }()
	select {
	case err := <-done:
		if err == nil {
			srv.fsys.Close()
		}
		return err
	case <-time.After(busyWait):
	}
	if Mounted(mnt) {
		if out, err := exec.Command("fusermount3", "-u", "-z", mnt).CombinedOutput(); err != nil {
			return fmt.Errorf("detach %s: %w: %s", mnt, err, strings.TrimSpace(string(out)))
		}
	}
	defer srv.fsys.Close()
	select {
	case err := <-done:
		return err
	case <-time.After(loopWait):
		// The goroutine above ends when the kernel drops the connection,
		// at the latest when the process exits.
		return ErrLingering
	}
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
