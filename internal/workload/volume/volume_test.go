package volume

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
	"github.com/zerogrid/zerogrid/internal/workload/workloadtest"
)

var nextID atomic.Uint64

func newManager(t *testing.T, dir string, probe func() error) *Manager {
	t.Helper()
	m, err := New(Config{DataDir: dir, Log: slog.New(slog.NewTextHandler(io.Discard, nil)), Clock: workload.SystemClock{}, Probe: probe})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// managerFor returns a manager over a fresh data directory whose volumes
// are all deprovisioned when the test ends.
func managerFor(t *testing.T, probe func() error) *Manager {
	dir := t.TempDir()
	m := newManager(t, dir, probe)
	t.Cleanup(func() { removeAll(t, m) })
	return m
}

func removeAll(t *testing.T, m *Manager) {
	refs, err := m.List(context.Background())
	if err != nil {
		t.Error(err)
	}
	for _, r := range refs {
		if err := m.Deprovision(context.Background(), workload.Deployment{ID: r.Deployment}, r.Name); err != nil {
			t.Errorf("cleanup: %v", err)
		}
	}
}

func vol(name string, size uint64) spec.Workload {
	return spec.Workload{Name: name, Type: spec.TypeVolume, Resources: spec.Resources{Disk: size}}
}

func harness(probe func() error) workloadtest.Harness {
	return workloadtest.Harness{
		New: func(t *testing.T) workload.Manager { return managerFor(t, probe) },
		Reopen: func(t *testing.T, old workload.Manager) workload.Manager {
			return newManager(t, filepath.Dir(filepath.Dir(filepath.Dir(old.(*Manager).layout.root))), probe)
		},
		Valid: func(t *testing.T, name string) (workload.Deployment, spec.Workload) {
			return workload.Deployment{ID: nextID.Add(1), Generation: 1, Owner: 3}, vol(name, 16<<20)
		},
		Change: func(t *testing.T, w spec.Workload) spec.Workload {
			w.Resources.Disk *= 2
			return w
		},
		Invalid: func(t *testing.T, name string) spec.Workload { return vol(name, 1<<20) },
		Timeout: 5 * time.Second,
	}
}

func TestConformancePlainDirectory(t *testing.T) {
	t.Parallel()
	h := harness(func() error { return errors.New("no loop devices") })
	// A plain-directory volume is never Ready: it is Degraded with its
	// reason (see TestFallbackSaysWhy); the suite waits for Ready, so
	// adapt it by reporting that state as the goal.
	workloadtest.Run(t, workloadtest.Harness{
		New: h.New, Reopen: h.Reopen, Valid: h.Valid, Change: h.Change, Invalid: h.Invalid,
		Timeout: h.Timeout, Want: workload.Degraded,
	})
}

func TestFallbackSaysWhy(t *testing.T) {
	t.Parallel()
	m := managerFor(t, func() error { return errors.New("no loop devices") })
	d := workload.Deployment{ID: 1}
	if err := m.Provision(context.Background(), d, vol("data", 8<<20)); err != nil {
		t.Fatal(err)
	}
	st, err := m.Observe(context.Background(), d, "data")
	if err != nil {
		t.Fatal(err)
	}
	if st.State != workload.Degraded || st.Reason != "size limit not enforced: no loop devices" {
		t.Fatalf("status of a plain-directory volume = %+v", st)
	}
	if len(st.Events) != 1 || !strings.Contains(st.Events[0].Reason, "size limit not enforced") {
		t.Errorf("events = %v, want one saying the size is not enforced", st.Events)
	}
	p, err := m.HostPath(context.Background(), d, "data")
	if err != nil || !strings.HasPrefix(p, m.layout.root) {
		t.Fatalf("HostPath = %q, %v", p, err)
	}
}

func TestRejectsBadNames(t *testing.T) {
	t.Parallel()
	m := managerFor(t, func() error { return errors.New("no loop devices") })
	for _, name := range []string{"../x", "", "a/b", "..", "UPPER"} {
		err := m.Provision(context.Background(), workload.Deployment{ID: 1}, vol(name, 8<<20))
		if !workload.IsPermanent(err) {
			t.Errorf("Provision(%q) = %v, want a permanent error", name, err)
		}
		if err := m.Deprovision(context.Background(), workload.Deployment{ID: 1}, name); !workload.IsPermanent(err) {
			t.Errorf("Deprovision(%q) = %v, want a permanent error", name, err)
		}
	}
}
