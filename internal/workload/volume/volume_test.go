package volume

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
	"github.com/zerogrid/zerogrid/internal/workload/idmap"
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

// TestOwnersShiftedOnce: a volume an older agent made (no id range in its
// record, files owned by the container's own ids) is given to its
// deployment's range at the next Provision: file owned by i becomes
// owned by the range's host id for i, once, also when a crash stopped a
// first shift midway.
func TestOwnersShiftedOnce(t *testing.T) {
	t.Parallel()
	if os.Geteuid() != 0 {
		t.Skip("needs root to own files as other users")
	}
	m := managerFor(t, func() error { return errors.New("no loop devices") })
	ctx := context.Background()
	d := workload.Deployment{ID: 4}
	ref := workload.Ref{Deployment: 4, Name: "data"}
	if err := m.Provision(ctx, d, vol("data", 8<<20)); err != nil {
		t.Fatal(err)
	}
	rec, _, _ := m.layout.load(ref)
	if rec.IDBase < idmap.Size {
		t.Fatalf("a new volume has id range %d", rec.IDBase)
	}
	data := m.layout.data(ref, rec.Kind)
	if owner(t, data) != [2]int{int(rec.IDBase), int(rec.IDBase)} {
		t.Fatalf("a new volume's data is owned by %v, want the deployment's root %d", owner(t, data), rec.IDBase)
	}
	// What an older agent left: a record without a range, files owned by
	// the ids the containers used on the node itself; and one file a
	// first, interrupted shift already moved.
	files := map[string][2]int{"": {0, 0}, "root": {0, 0}, "app": {1000, 1000}, "odd": {70000, 5}, "done": {int(rec.IDBase) + 7, int(rec.IDBase) + 7}}
	for name, o := range files {
		p := filepath.Join(data, name)
		if name != "" {
			if err := os.WriteFile(p, []byte(name), 0o644); err != nil {
				t.Fatal(err)
			}
		}
		if err := os.Lchown(p, o[0], o[1]); err != nil {
			t.Fatal(err)
		}
	}
	base := rec.IDBase
	rec.IDBase = 0
	if err := m.layout.save(ref, rec); err != nil {
		t.Fatal(err)
	}
	if err := m.ids.Release(4, "volume/data"); err != nil {
		t.Fatal(err)
	}
	m = newManager(t, filepath.Dir(filepath.Dir(filepath.Dir(m.layout.root))), func() error { return errors.New("no loop devices") })
	if err := m.Provision(ctx, d, vol("data", 8<<20)); err != nil {
		t.Fatal(err)
	}
	if rec, _, _ = m.layout.load(ref); rec.IDBase != base {
		t.Fatalf("record after the shift has range %d, want %d", rec.IDBase, base)
	}
	b := int(base)
	want := map[string][2]int{"": {b, b}, "root": {b, b}, "app": {b + 1000, b + 1000}, "odd": {b + idmap.Nobody, b + 5}, "done": {b + 7, b + 7}}
	for name, o := range want {
		if got := owner(t, filepath.Join(data, name)); got != o {
			t.Errorf("%q is owned by %v after the shift, want %v", name, got, o)
		}
	}
	st, _ := m.Observe(ctx, d, "data")
	if !hasReason(st.Events, "gave its 4 files") {
		t.Errorf("events %v do not say the files were given to the deployment's ids", st.Events)
	}
	// Provisioning again changes nothing.
	if err := os.Lchown(filepath.Join(data, "app"), b+1, b+1); err != nil {
		t.Fatal(err)
	}
	if err := m.Provision(ctx, d, vol("data", 8<<20)); err != nil {
		t.Fatal(err)
	}
	if got := owner(t, filepath.Join(data, "app")); got != [2]int{b + 1, b + 1} {
		t.Errorf("a second Provision changed an owner: %v", got)
	}
}

func owner(t *testing.T, p string) [2]int {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Lstat(p, &st); err != nil {
		t.Fatal(err)
	}
	return [2]int{int(st.Uid), int(st.Gid)}
}

func hasReason(evs []workload.Event, text string) bool {
	for _, e := range evs {
		if strings.Contains(e.Reason, text) {
			return true
		}
	}
	return false
}
