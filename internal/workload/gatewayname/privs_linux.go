package gatewayname

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// dropPrivileges is the tunnel client's first act after it read its
// hand-over: a root process becomes uid:gid with no supplementary groups,
// which leaves it no capabilities; then it gives up core dumps and being
// dumpable, so that other processes of the same uid can neither trace it
// nor read its memory, which holds the node key. (no_new_privs it has
// from its start: spawn.)
func dropPrivileges(uid, gid uint32) error {
	if os.Geteuid() == 0 {
		if uid == 0 || gid == 0 {
			return fmt.Errorf("refusing to run the tunnel client as root (uid %d, gid %d)", uid, gid)
		}
		// Go applies these to every thread of the process.
		if err := syscall.Setgroups(nil); err != nil {
			return fmt.Errorf("setgroups: %w", err)
		}
		if err := syscall.Setgid(int(gid)); err != nil {
			return fmt.Errorf("setgid %d: %w", gid, err)
		}
		if err := syscall.Setuid(int(uid)); err != nil {
			return fmt.Errorf("setuid %d: %w", uid, err)
		}
	}
	if err := unix.Setrlimit(unix.RLIMIT_CORE, &unix.Rlimit{}); err != nil {
		return fmt.Errorf("no core dumps: %w", err)
	}
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("not dumpable: %w", err)
	}
	return nil
}
