package container

import (
	"errors"
	"fmt"
	"time"

	"golang.org/x/sys/unix"
)

// becomeSubreaper makes orphaned descendants children of this process. A
// container's init is runc's child; when `runc run --detach` exits it is
// re-parented to the nearest subreaper, the agent, which can then collect
// its exit status. This is a property of the whole agent process.
func becomeSubreaper() error {
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return fmt.Errorf("become child subreaper: %w", err)
	}
	return nil
}

// procWatch follows one process through a pidfd, which, unlike a pid,
// cannot come to name another process.
type procWatch struct {
	pid, fd int
}

func watchProc(pid int) (*procWatch, error) {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return nil, fmt.Errorf("pidfd_open %d: %w", pid, err)
	}
	return &procWatch{pid: pid, fd: fd}, nil
}

// wait blocks until the process exits, polling every tick so that it can
// call check (which may stop the wait by returning true).
func (w *procWatch) wait(tick time.Duration, check func() bool) (exitStatus, bool) {
	fds := []unix.PollFd{{Fd: int32(w.fd), Events: unix.POLLIN}}
	for {
		n, err := unix.Poll(fds, int(tick/time.Millisecond))
		if err != nil && !errors.Is(err, unix.EINTR) {
			return exitStatus{}, false
		}
		if n > 0 {
			return w.reap(), false
		}
		if check() {
			return exitStatus{}, true
		}
	}
}

// reap collects the exit status of an exited child; for a process that is
// not our child the status is unknown (its parent collects it).
func (w *procWatch) reap() exitStatus { return collect(w.pid) }

func (w *procWatch) close() { unix.Close(w.fd) }

// reap collects a dead child's status so it does not stay a zombie; for
// a process that is not our child it does nothing.
func reap(pid int) { collect(pid) }

// collect waits up to 200 ms for pid to become waitable and returns its
// exit status: unknown if it is not our child or does not exit.
func collect(pid int) exitStatus {
	if pid <= 0 { // never wait for "any child": that would steal others' statuses
		return exitStatus{}
	}
	for range 20 {
		var ws unix.WaitStatus
		got, err := unix.Wait4(pid, &ws, unix.WNOHANG, nil)
		switch {
		case err != nil:
			return exitStatus{}
		case got == pid && ws.Signaled():
			return exitStatus{Code: 128 + int(ws.Signal()), Known: true}
		case got == pid:
			return exitStatus{Code: ws.ExitStatus(), Known: true}
		}
		time.Sleep(10 * time.Millisecond)
	}
	return exitStatus{}
}
