package gatewayname

import (
	"context"
	"fmt"
	"os"
	"sync"
	"time"

	"github.com/zerogrid/zerogrid/internal/eventlog"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
)

// Restart policy of tunnel clients: always, after 250 ms doubling up to
// 30 s; a run of stableRun resets the wait.
const (
	backoffMin = 250 * time.Millisecond
	backoffMax = 30 * time.Second
	stableRun  = 10 * time.Second
)

// supervisor keeps one workload's tunnel client running: it starts (or
// adopts) the process, watches it through its pidfd and starts it again
// when it exits. It runs in the agent; stop leaves the process as it is.
type supervisor struct {
	m     *Manager
	ref   workload.Ref
	route handoverRoute
	hash  string // hex routeHash(route)
	// keyed are the spec's gateways when some are named by key only (their
	// addresses in route were looked up on the ledger at resolved).
	keyed    []spec.GatewayRef
	resolved time.Time

	ctx    context.Context // cancelled by stop
	cancel context.CancelFunc
	stopR  *os.File // becomes readable (EOF) when stop closes stopW
	stopW  *os.File
	done   chan struct{}

	mu       sync.Mutex
	proc     *proc // the client running now; nil between runs
	restarts int
	down     string // why no client runs, while proc is nil
	up       bool   // seen serving, for the events
}

// resolveDue reports whether the keyed gateways' addresses should be
// looked up again now, and if so marks them looked up.
func (s *supervisor) resolveDue(now time.Time, every time.Duration) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if now.Sub(s.resolved) < every {
		return false
	}
	s.resolved = now
	return true
}

func (m *Manager) newSupervisor(ref workload.Ref, route handoverRoute, hash string, restarts int) *supervisor {
	ctx, cancel := context.WithCancel(context.Background())
	s := &supervisor{m: m, ref: ref, route: route, hash: hash, ctx: ctx, cancel: cancel,
		done: make(chan struct{}), restarts: restarts, down: "tunnel client starting"}
	var err error
	if s.stopR, s.stopW, err = os.Pipe(); err != nil {
		// Without its stop pipe the supervisor cannot wait on a process;
		// it retries as if the start had failed.
		s.down = "start failed: " + err.Error()
	}
	return s
}

// run supervises until stop, starting with adopted when it is not nil.
// The result of the first start goes to first.
func (s *supervisor) run(adopted *proc, first chan<- error) {
	defer close(s.done)
	p, err := adopted, error(nil)
	if p != nil {
		s.setProc(p, "")
		s.m.event(s.ref, eventlog.KindProvisioning, fmt.Sprintf("adopted the running tunnel client (pid %d)", p.pid))
	} else if p, err = s.start(); err == nil {
		s.m.event(s.ref, eventlog.KindProvisioning, fmt.Sprintf("tunnel client started (pid %d)", p.pid))
	}
	first <- err
	fails := 0
	for {
		why := "its start failed"
		if p != nil {
			began := s.m.cfg.Clock.Now()
			exited, err := p.wait(s.stopR)
			if !exited {
				if err != nil && s.ctx.Err() == nil {
					s.m.cfg.Log.Error("cannot watch the tunnel client; stopped supervising it", "name", s.ref.Name, "pid", p.pid, "err", err)
				}
				return // the process stays: s.proc hands it to the stopper
			}
			why = fmt.Sprintf("the tunnel client (pid %d) ended", p.pid)
			if st := p.status(); st != "" {
				why += " with " + st
			}
			p.close()
			s.setProc(nil, why+"; restarting")
			if s.m.cfg.Clock.Now().Sub(began) >= stableRun {
				fails = 0
			}
		}
		select {
		case <-s.ctx.Done():
			return
		case <-s.m.cfg.Clock.After(min(backoffMin<<min(fails, 10), backoffMax)):
		}
		fails++
		p, err = s.start()
		s.restarted(why, p, err)
	}
}

// start starts a tunnel client: the hand-over goes into a pipe (the
// kernel holds it until the client reads it; it never reaches a disk),
// the health file and the log are opened for it, and the record names the
// new process before anything else happens.
func (s *supervisor) start() (*proc, error) {
	if s.stopR == nil {
		return nil, fmt.Errorf("no stop pipe")
	}
	cfg := &s.m.cfg
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer r.Close()
	h := &handover{Version: handoverVersion, Seed: cfg.Key.Seed(), UID: cfg.UID, GID: cfg.GID, Route: s.route}
	err = writeHandover(w, h) // 16 KiB at most: the pipe buffer takes it all
	clear(h.Seed)
	if cerr := w.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("hand-over: %w", err)
	}
	health, err := os.OpenFile(s.m.health(s.ref), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	defer health.Close()
	log, err := os.OpenFile(s.m.logFile(s.ref), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	p, err := spawn(cfg.Command, []*os.File{r, health}, log)
	if err != nil {
		s.setProc(nil, "start failed: "+err.Error())
		return nil, err
	}
	id := p.id()
	if err := s.m.update(s.ref, func(rec *record) { rec.Proc, rec.Route = &id, s.hash }); err != nil {
		p.kill(cfg.StopTimeout)
		p.close()
		s.setProc(nil, "start failed: "+err.Error())
		return nil, err
	}
	s.setProc(p, "")
	return p, nil
}

// restarted counts a restart and says how it went.
func (s *supervisor) restarted(why string, p *proc, err error) {
	if s.ctx.Err() != nil {
		return
	}
	s.mu.Lock()
	s.restarts++
	n := s.restarts
	s.mu.Unlock()
	if uerr := s.m.update(s.ref, func(rec *record) { rec.Restarts = n }); uerr != nil {
		s.m.cfg.Log.Warn("save restart count", "name", s.ref.Name, "err", uerr)
	}
	if err != nil {
		s.m.event(s.ref, eventlog.KindDegraded, why+"; restart failed: "+workload.Reason(err))
		return
	}
	s.m.event(s.ref, eventlog.KindRestarted, fmt.Sprintf("%s; restarted (pid %d)", why, p.pid))
}

func (s *supervisor) setProc(p *proc, down string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.proc = p
	if p == nil {
		s.down = down
	}
}

// status is the running client's pid (0 when none runs, with the reason),
// and the restart count.
func (s *supervisor) status() (pid, restarts int, down string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.proc != nil {
		pid = s.proc.pid
	}
	return pid, s.restarts, s.down
}

// noteUp records an event when the client first serves, and when it
// serves no more.
func (s *supervisor) noteUp(up bool) {
	s.mu.Lock()
	was := s.up
	s.up = up
	s.mu.Unlock()
	switch {
	case up && !was:
		s.m.event(s.ref, eventlog.KindReady, "serving "+s.route.Name+" through its gateways")
	case !up && was:
		s.m.event(s.ref, eventlog.KindDegraded, "no gateway tunnel up")
	}
}

// stop ends the supervisor and returns the client it watched, still
// running (nil when none runs); the caller kills it or closes its handle.
func (s *supervisor) stop() *proc {
	s.cancel()
	if s.stopW != nil {
		s.stopW.Close()
	}
	<-s.done
	if s.stopR != nil {
		s.stopR.Close()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	p := s.proc
	s.proc = nil
	return p
}
