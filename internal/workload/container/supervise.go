package container

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sync"
	"time"

	"github.com/zerogrid/zerogrid/internal/eventlog"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
)

// Restart policy tuning.
const (
	backoffMin  = 250 * time.Millisecond
	backoffMax  = 30 * time.Second
	stableRun   = 10 * time.Second // a run this long resets the backoff
	crashWindow = time.Minute
	crashLoop   = 5 // restarts within crashWindow: Degraded
	pollTick    = 100 * time.Millisecond
	logCheck    = 10 * time.Second
	maxLogBytes = 8 << 20
)

// supervisor keeps one container running according to its restart
// policy. It runs in the agent, never in the container; stopping it
// (stop) leaves the container as it is.
type supervisor struct {
	id, bundle, logPath, policy string
	ports                       []uint16 // Observe probes the first

	runc    runc
	root    rootfsMount // bound while runc starts the container
	clock   workload.Clock
	log     *slog.Logger
	events  *workload.EventQueue
	persist func(restarts int) // records the restart count on disk

	ctx    context.Context // cancelled by stop
	cancel context.CancelFunc
	done   chan struct{}

	mu sync.Mutex
	st supState
}

// supState is what Observe reads; guarded by supervisor.mu.
type supState struct {
	running  bool
	pid      int
	restarts int
	recent   []time.Time // restarts within crashWindow
	lastExit exitStatus
	lastErr  string // why the last start failed
	finished string // why it stopped for good ("" while the policy restarts it)
}

// run supervises until stop. fresh means the container was never started
// from this bundle: anything left under its id is replaced. Otherwise a
// running container is adopted. The first start's result goes to first.
func (s *supervisor) run(fresh bool, first chan<- error) {
	defer close(s.done)
	pid, adopted, err := s.begin(fresh)
	first <- err
	fails := 0
	for {
		exit, stable, stopped := s.outcome(pid, adopted, err)
		if stopped || s.ctx.Err() != nil {
			return
		}
		if stable {
			fails = 0
		}
		if !s.restartable(exit, err) {
			s.finish(exit, err)
			return
		}
		select {
		case <-s.ctx.Done():
			return
		case <-s.clock.After(min(backoffMin<<min(fails, 10), backoffMax)):
		}
		fails++
		pid, err = s.start()
		adopted = false
		s.restarted(exit, err)
	}
}

// outcome waits for the end of what the last start began: the process's
// exit and whether it ran long enough to reset the backoff. A failed start
// ends at once; pid 0 means the process had exited before we watched.
func (s *supervisor) outcome(pid int, adopted bool, startErr error) (exit exitStatus, stable, stopped bool) {
	switch {
	case startErr != nil:
		return exitStatus{}, false, false
	case pid == 0:
		return s.lastExit(), false, false
	}
	ran, exit, stopped := s.watch(pid, adopted)
	return exit, ran >= stableRun, stopped
}

func (s *supervisor) stop() {
	s.cancel()
	<-s.done
}

// begin adopts a running container, reports one that exited meanwhile
// (pid 0, no error), or starts one.
func (s *supervisor) begin(fresh bool) (pid int, adopted bool, err error) {
	if !fresh {
		st, err := s.runc.state(s.ctx, s.id)
		if err != nil {
			s.failed(err)
			return 0, false, err
		}
		switch st.Status {
		case "running":
			s.setRunning(st.Pid)
			s.event(eventlog.KindProvisioning, fmt.Sprintf("adopted the running container (pid %d)", st.Pid))
			return st.Pid, true, nil
		case "stopped": // exited while no agent watched: the policy decides
			s.exited(exitStatus{}) // its status went to its parent, a previous agent
			s.event(eventlog.KindDegraded, "the container exited while the agent was down")
			return 0, false, nil
		}
	}
	pid, err = s.start()
	if err == nil {
		s.event(eventlog.KindProvisioning, fmt.Sprintf("started (pid %d)", pid))
	}
	return pid, false, err
}

// start replaces whatever is left under the id by a new run.
func (s *supervisor) start() (int, error) {
	if err := s.runc.delete(s.ctx, s.id); err != nil {
		s.failed(err)
		return 0, err
	}
	out, err := os.OpenFile(s.logPath, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		s.failed(err)
		return 0, err
	}
	defer out.Close()
	if err := s.root.bind(); err != nil {
		s.failed(err)
		return 0, err
	}
	pid, err := s.runc.run(s.ctx, s.id, s.bundle, out)
	if uerr := s.root.unbind(); uerr != nil {
		s.log.Warn("unmount the root filesystem runc started the container from", "container", s.id, "err", uerr)
	}
	if err != nil {
		s.failed(err)
		return 0, err
	}
	s.setRunning(pid)
	return pid, nil
}

// watch waits for the container's init to exit (or for stop).
func (s *supervisor) watch(pid int, adopted bool) (time.Duration, exitStatus, bool) {
	began := s.clock.Now()
	w, err := watchProc(pid)
	if err != nil { // gone already
		s.exited(exitStatus{})
		return 0, exitStatus{}, false
	}
	defer w.close()
	if adopted { // the pid could have been reused before the pidfd was opened
		if st, err := s.runc.state(s.ctx, s.id); err == nil && (st.Status != "running" || st.Pid != pid) {
			s.exited(exitStatus{})
			return 0, exitStatus{}, false
		}
	}
	lastCap := began
	exit, stopped := w.wait(pollTick, func() bool {
		if now := s.clock.Now(); now.Sub(lastCap) > logCheck {
			lastCap = now
			if err := capLog(s.logPath, maxLogBytes); err != nil {
				s.log.Warn("cap container log", "container", s.id, "err", err)
			}
		}
		return s.ctx.Err() != nil
	})
	if !stopped {
		s.exited(exit)
	}
	return s.clock.Now().Sub(began), exit, stopped
}

func (s *supervisor) restartable(exit exitStatus, startErr error) bool {
	switch s.policy {
	case spec.RestartNever:
		return false
	case spec.RestartOnFailure:
		return startErr != nil || !exit.Known || exit.Code != 0
	}
	return true
}

func (s *supervisor) setRunning(pid int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.running, s.st.pid, s.st.lastErr = true, pid, ""
}

func (s *supervisor) lastExit() exitStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.st.lastExit
}

func (s *supervisor) exited(exit exitStatus) {
	s.mu.Lock()
	s.st.running, s.st.pid, s.st.lastExit = false, 0, exit
	s.mu.Unlock()
	s.log.Info("container exited", "container", s.id, "status", exit.String())
}

func (s *supervisor) failed(err error) {
	if s.ctx.Err() != nil {
		return
	}
	s.mu.Lock()
	s.st.running, s.st.lastErr = false, workload.Reason(err)
	s.mu.Unlock()
	s.event(eventlog.KindDegraded, "start failed: "+workload.Reason(err))
}

func (s *supervisor) finish(exit exitStatus, startErr error) {
	why := "exited with " + exit.String()
	if startErr != nil {
		why = "start failed: " + workload.Reason(startErr)
	}
	why = fmt.Sprintf("%s; restart policy %q does not restart it", why, s.policy)
	s.mu.Lock()
	s.st.finished = why
	s.mu.Unlock()
	s.event(eventlog.KindFailed, why)
}

// restarted counts a restart attempt and says how it went.
func (s *supervisor) restarted(exit exitStatus, err error) {
	if s.ctx.Err() != nil {
		return
	}
	now := s.clock.Now()
	s.mu.Lock()
	s.st.restarts++
	s.st.recent = append(pruneBefore(s.st.recent, now.Add(-crashWindow)), now)
	n, loop := s.st.restarts, len(s.st.recent) == crashLoop
	s.mu.Unlock()
	s.persist(n)
	if err == nil {
		s.event(eventlog.KindRestarted, "restarted after "+exit.String())
	}
	if loop {
		s.event(eventlog.KindDegraded, fmt.Sprintf("crash loop: %d restarts within %v; last %s", crashLoop, crashWindow, exit))
	}
}

func (s *supervisor) event(kind, reason string) {
	s.events.Add(s.clock.Now(), kind, reason)
	s.log.Info("container "+kind, "container", s.id, "reason", reason)
}

// status is the supervisor's view: the state, its reason, the restart
// count, and whether the process runs.
func (s *supervisor) status() (workload.State, string, int, bool) {
	now := s.clock.Now()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.st.recent = pruneBefore(s.st.recent, now.Add(-crashWindow))
	st := s.st
	switch {
	case st.finished != "":
		return workload.Failed, st.finished, st.restarts, false
	case len(st.recent) >= crashLoop:
		return workload.Degraded, fmt.Sprintf("crash loop: %d restarts in the last %v; last %s", len(st.recent), crashWindow, st.lastExit), st.restarts, st.running
	case !st.running && st.lastErr != "":
		return workload.Provisioning, "start failed: " + st.lastErr, st.restarts, false
	case !st.running:
		return workload.Provisioning, "restarting after " + st.lastExit.String(), st.restarts, false
	}
	return workload.Ready, "", st.restarts, true
}

func pruneBefore(ts []time.Time, cutoff time.Time) []time.Time {
	i := 0
	for i < len(ts) && ts[i].Before(cutoff) {
		i++
	}
	return ts[i:]
}

// exitStatus is how a container's init ended.
type exitStatus struct {
	Code  int  // exit code, or 128+signal
	Known bool // false when the process was not our child (adopted)
}

func (e exitStatus) String() string {
	if !e.Known {
		return "an unknown exit status (started by a previous agent)"
	}
	return fmt.Sprintf("exit code %d", e.Code)
}
