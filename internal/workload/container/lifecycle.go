package container

import (
	"context"
	"fmt"
	"os"
	"path"
	"time"

	"github.com/zerogrid/zerogrid/internal/eventlog"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
	"github.com/zerogrid/zerogrid/internal/workload/idmap"
)

// ensureSupervisor starts a supervisor for ref unless one runs with the
// current config. restart says the config changed: a running container is
// replaced instead of adopted.
func (m *Manager) ensureSupervisor(ctx context.Context, ref workload.Ref, rec record, c *spec.ContainerConfig, restart bool) error {
	m.mu.Lock()
	s := m.sups[ref]
	m.mu.Unlock()
	if s != nil && !restart {
		return nil
	}
	if restart { // a new config: stop what runs the old one, gracefully
		m.stopSupervisor(ref)
		if err := m.stopContainer(ctx, ref); err != nil {
			return err
		}
		if s != nil {
			m.event(ref, eventlog.KindProvisioning, "restarted with the new configuration")
		}
	}
	s = m.newSupervisor(ref, rec, c)
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		s.cancel()
		return workload.ErrClosed
	}
	m.sups[ref] = s
	m.mu.Unlock()
	first := make(chan error, 1)
	go s.run(restart, first)
	select {
	case err := <-first:
		if err != nil {
			return workload.Retryable(err, "container %s: start: %s (retrying per restart policy)", ref.Name, workload.Reason(err))
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

func (m *Manager) newSupervisor(ref workload.Ref, rec record, c *spec.ContainerConfig) *supervisor {
	ctx, cancel := context.WithCancel(context.Background())
	s := &supervisor{
		id: m.layout.id(ref), bundle: m.layout.bundle(ref), logPath: m.layout.log(ref), policy: c.Restart,
		runc: m.runc, root: m.rootfsMount(ref), clock: m.clock, log: m.log, events: m.queue(ref),
		persist: func(n int) { m.saveRestarts(ref, n) },
		ctx:     ctx, cancel: cancel, done: make(chan struct{}), ports: c.Ports,
	}
	s.st.restarts = rec.Restarts
	return s
}

func (m *Manager) stopSupervisor(ref workload.Ref) {
	m.mu.Lock()
	s := m.sups[ref]
	delete(m.sups, ref)
	m.mu.Unlock()
	if s != nil {
		s.stop()
	}
}

// saveRecord saves rec with the restart count the supervisor knows.
func (m *Manager) saveRecord(ref workload.Ref, rec *record) error {
	m.recMu.Lock()
	defer m.recMu.Unlock()
	m.mu.Lock()
	s := m.sups[ref]
	m.mu.Unlock()
	if s != nil {
		_, _, n, _ := s.status()
		rec.Restarts = max(rec.Restarts, n)
	}
	return m.layout.save(ref, *rec)
}

func (m *Manager) saveRestarts(ref workload.Ref, n int) {
	m.recMu.Lock()
	defer m.recMu.Unlock()
	rec, ok, err := m.layout.load(ref)
	if err == nil && ok {
		rec.Restarts = n
		err = m.layout.save(ref, rec)
	}
	if err != nil {
		m.log.Warn("save restart count", "name", ref.Name, "err", err)
	}
}

// stopContainer stops ref's container (SIGTERM, then SIGKILL after
// StopTimeout), deletes it from runc (which removes its cgroup) and reaps
// its init if it was our child.
func (m *Manager) stopContainer(ctx context.Context, ref workload.Ref) error {
	id := m.layout.id(ref)
	st, err := m.runc.state(ctx, id)
	if err != nil {
		return err
	}
	if st.Status == "running" {
		if err := m.runc.kill(ctx, id, "TERM"); err != nil {
			return err
		}
		deadline := time.Now().Add(m.cfg.StopTimeout)
		for time.Now().Before(deadline) {
			if s, err := m.runc.state(ctx, id); err != nil || s.Status != "running" {
				break
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	if err := m.runc.delete(ctx, id); err != nil {
		return err
	}
	if st.Pid > 0 {
		reap(st.Pid)
	}
	return nil
}

// Deprovision implements workload.Manager.
func (m *Manager) Deprovision(ctx context.Context, d workload.Deployment, name string) error {
	if err := workload.CheckName(name); err != nil {
		return err
	}
	ref := workload.Ref{Deployment: d.ID, Name: name}
	leave, err := m.enter(ref)
	if err != nil {
		return err
	}
	defer leave()
	unlock := m.locks.Lock(ref)
	defer unlock()
	rec, ok, err := m.layout.load(ref)
	if err != nil {
		return fmt.Errorf("container %s: %w", name, err)
	}
	if ok {
		return m.teardown(ctx, ref, rec)
	}
	// A crash may have come between taking the id range and writing the
	// record.
	return m.releaseIDs(ref)
}

// releaseIDs gives up ref's hold on its deployment's id range.
func (m *Manager) releaseIDs(ref workload.Ref) error {
	if err := m.ids.Release(ref.Deployment, idmap.Holder(spec.TypeContainer, ref.Name)); err != nil {
		return fmt.Errorf("container %s: %w", ref.Name, err)
	}
	return nil
}

// teardown removes everything of ref, the record last, then its hold on
// the deployment's id range.
func (m *Manager) teardown(ctx context.Context, ref workload.Ref, rec record) error {
	m.stopSupervisor(ref)
	if err := m.stopContainer(ctx, ref); err != nil {
		return fmt.Errorf("container %s: %w", ref.Name, err)
	}
	if err := m.detach(ctx, rec.Slot); err != nil {
		return fmt.Errorf("container %s: %w", ref.Name, err)
	}
	if err := m.net.remove(ctx, rec.Slot); err != nil {
		return fmt.Errorf("container %s: %w", ref.Name, err)
	}
	if err := m.rootfsMount(ref).unbind(); err != nil { // left by a crash while runc started it
		return fmt.Errorf("container %s: %w", ref.Name, err)
	}
	dir := m.layout.dir(ref)
	for _, p := range []string{m.layout.bundle(ref), m.layout.rootfs(ref), m.layout.hosts(ref), m.layout.log(ref), m.layout.log(ref) + ".1", m.layout.state(ref), dir} {
		if err := os.RemoveAll(p); err != nil {
			return fmt.Errorf("container %s: %w", ref.Name, err)
		}
	}
	os.Remove(path.Dir(dir)) // the deployment's directory, once empty
	removeCgroupParents(path.Dir(m.layout.cgroupPath(ref)), m.layout.cgroup)
	m.freeSlot(rec.Slot, ref)
	m.events.Drop(ref)
	m.log.Info("container removed", "deployment", ref.Deployment, "name", ref.Name)
	return m.releaseIDs(ref)
}
