package volume

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
	"github.com/zerogrid/zerogrid/internal/workload/idmap"
)

// Deprovision implements workload.Manager. It refuses (retryable) to
// delete a volume whose filesystem it cannot unmount, so data is never
// deleted through a mount it does not own.
func (m *Manager) Deprovision(ctx context.Context, d workload.Deployment, name string) error {
	if err := workload.CheckName(name); err != nil {
		return err
	}
	ref := workload.Ref{Deployment: d.ID, Name: name}
	defer m.enter(ref)()
	unlock := m.locks.Lock(ref)
	defer unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	mnt := m.layout.mnt(ref)
	if err := unmount(mnt); err != nil {
		return workload.Retryable(err, "volume %s: %v", name, err)
	}
	if _, mounted, err := mountSource(mnt); err != nil || mounted {
		return workload.Retryable(ErrNotMounted, "volume %s: still mounted at %s after unmounting (%v)", name, mnt, err)
	}
	if err := os.RemoveAll(m.layout.dir(ref)); err != nil {
		return fmt.Errorf("volume %s: %w", name, err)
	}
	os.Remove(m.layout.dir(workload.Ref{Deployment: d.ID})) // the deployment's directory, when empty
	m.events.Drop(ref)
	if err := m.ids.Release(d.ID, idmap.Holder(spec.TypeVolume, name)); err != nil {
		return fmt.Errorf("volume %s: %w", name, err)
	}
	m.log.Info("volume removed", "deployment", d.ID, "volume", name)
	return nil
}

// Observe implements workload.Manager.
func (m *Manager) Observe(ctx context.Context, d workload.Deployment, name string) (workload.Status, error) {
	if err := workload.CheckName(name); err != nil {
		return workload.Status{}, err
	}
	ref := workload.Ref{Deployment: d.ID, Name: name}
	rec, ok, err := m.layout.load(ref)
	if err != nil {
		return workload.Status{}, fmt.Errorf("volume %s: %w", name, err)
	}
	if !ok && m.inProgress(ref) {
		return workload.Status{State: workload.Provisioning, Reason: "being provisioned"}, nil
	}
	if !ok {
		return workload.Status{}, fmt.Errorf("volume %s: %w", name, workload.ErrNotFound)
	}
	st := workload.Status{State: workload.Ready, Events: m.queue(ref).Drain()}
	switch {
	case m.inProgress(ref):
		st.State = workload.Provisioning
	case rec.Kind == KindDir:
		st.State, st.Reason = workload.Degraded, rec.Reason
	default:
		if _, mounted, err := mountSource(m.layout.mnt(ref)); err != nil || !mounted {
			st.State, st.Reason = workload.Pending, "filesystem not mounted yet"
		}
	}
	return st, nil
}

// List implements workload.Manager.
func (m *Manager) List(ctx context.Context) ([]workload.Ref, error) {
	return m.layout.list()
}

// HostPath implements workload.Mounter: the directory containers mount.
func (m *Manager) HostPath(ctx context.Context, d workload.Deployment, name string) (string, error) {
	if err := workload.CheckName(name); err != nil {
		return "", err
	}
	ref := workload.Ref{Deployment: d.ID, Name: name}
	rec, ok, err := m.layout.load(ref)
	if err != nil {
		return "", fmt.Errorf("volume %s: %w", name, err)
	}
	if !ok {
		return "", fmt.Errorf("volume %s: %w", name, workload.ErrNotFound)
	}
	if rec.Kind == KindExt4 {
		if _, mounted, err := mountSource(m.layout.mnt(ref)); err != nil || !mounted {
			return "", fmt.Errorf("volume %s: %w", name, ErrNotMounted)
		}
	}
	p := m.layout.data(ref, rec.Kind)
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return "", fmt.Errorf("volume %s: %w", name, workload.ErrNotFound)
	}
	return p, nil
}

// enter marks ref busy until the returned function runs.
func (m *Manager) enter(ref workload.Ref) (leave func()) {
	m.mu.Lock()
	m.busy[ref]++
	m.mu.Unlock()
	return func() {
		m.mu.Lock()
		if m.busy[ref]--; m.busy[ref] == 0 {
			delete(m.busy, ref)
		}
		m.mu.Unlock()
	}
}

func (m *Manager) inProgress(ref workload.Ref) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.busy[ref] > 0
}

func (m *Manager) queue(ref workload.Ref) *workload.EventQueue { return m.events.For(ref) }

func (m *Manager) event(ref workload.Ref, kind, reason string) {
	m.queue(ref).Add(m.clock.Now(), kind, reason)
	m.log.Info("volume "+kind, "deployment", ref.Deployment, "volume", ref.Name, "reason", reason)
}
