package zos

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Reaper is the only waiter for child processes in PID 1: it reaps every
// child that exits, the ones PID 1 started and the orphans the kernel
// reparents to it, so no zombie accumulates. Processes started through
// Start get their exit status on a channel. Nothing else in the process
// may wait for children (no os/exec Wait): the Reaper would take their
// status.
type Reaper struct {
	log     *slog.Logger
	mu      sync.Mutex
	waiting map[int]chan unix.WaitStatus
	orphans int
}

// NewReaper returns a Reaper; call Run to start reaping.
func NewReaper(log *slog.Logger) *Reaper {
	return &Reaper{log: log, waiting: map[int]chan unix.WaitStatus{}}
}

// Start starts a process as os.StartProcess does and returns its pid and
// a channel that receives its wait status once, when it exits.
func (r *Reaper) Start(path string, argv []string, attr *os.ProcAttr) (int, <-chan unix.WaitStatus, error) {
	// Holding the lock across the start makes the reaper, which takes it
	// before dispatching, see the registration even if the child exits at
	// once.
	r.mu.Lock()
	defer r.mu.Unlock()
	p, err := os.StartProcess(path, argv, attr)
	if err != nil {
		return 0, nil, err
	}
	ch := make(chan unix.WaitStatus, 1)
	r.waiting[p.Pid] = ch
	pid := p.Pid
	p.Release() // the Reaper waits, not os.Process
	return pid, ch, nil
}

// Orphans is how many exited processes the Reaper reaped that Start did not
// start.
func (r *Reaper) Orphans() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.orphans
}

// Run reaps on every SIGCHLD, and every second in case signals were
// merged, until ctx ends.
func (r *Reaper) Run(ctx context.Context) {
	sig := make(chan os.Signal, 16)
	signal.Notify(sig, syscall.SIGCHLD)
	defer signal.Stop(sig)
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	for {
		r.reap()
		select {
		case <-ctx.Done():
			return
		case <-sig:
		case <-tick.C:
		}
	}
}

// reap collects every child that has exited.
func (r *Reaper) reap() {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if pid <= 0 || err != nil {
			return
		}
		r.mu.Lock()
		ch, ok := r.waiting[pid]
		delete(r.waiting, pid)
		if !ok {
			r.orphans++
		}
		r.mu.Unlock()
		if ok {
			ch <- ws
		} else {
			r.log.Debug("reaped an orphan", "pid", pid, "status", describeExit(ws))
		}
	}
}

// describeExit says how a process ended.
func describeExit(ws unix.WaitStatus) string {
	switch {
	case ws.Exited():
		return fmt.Sprintf("exit status %d", ws.ExitStatus())
	case ws.Signaled():
		return "killed by " + ws.Signal().String()
	default:
		return fmt.Sprintf("wait status %#x", uint32(ws))
	}
}
