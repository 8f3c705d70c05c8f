// Package workloadtest is the conformance suite of workload.Manager (after
// restic's internal/backend/test): every implementation runs Run from its
// own tests, so the in-memory fake and the real managers keep one contract.
package workloadtest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
)

// Harness adapts one implementation to the suite.
type Harness struct {
	// New returns a fresh manager; it registers its own cleanup.
	New func(t *testing.T) workload.Manager
	// Reopen returns a new manager over the same node state as m, as after
	// an agent restart, closing m.
	Reopen func(t *testing.T, m workload.Manager) workload.Manager
	// Valid returns a deployment and a workload named name that the
	// manager must bring to Ready.
	Valid func(t *testing.T, name string) (workload.Deployment, spec.Workload)
	// Change returns w altered so that Update has something to change.
	Change func(t *testing.T, w spec.Workload) spec.Workload
	// Invalid returns a workload that Provision must refuse permanently.
	Invalid func(t *testing.T, name string) spec.Workload
	// Timeout bounds the wait for Ready.
	Timeout time.Duration
	// Want is the state a valid workload settles in; empty means Ready.
	// (A volume that cannot enforce its size settles in Degraded.)
	Want workload.State
}

func (h Harness) waitUp(t *testing.T, m workload.Manager, d workload.Deployment, name string) workload.Status {
	t.Helper()
	want := h.Want
	if want == "" {
		want = workload.Ready
	}
	return WaitState(t, m, d, name, want, h.Timeout)
}

// Run runs the conformance suite; subtests run in parallel.
func Run(t *testing.T, h Harness) {
	tests := []struct {
		name string
		fn   func(*testing.T, Harness)
	}{
		{"ProvisionReady", testProvisionReady},
		{"ProvisionTwice", testProvisionTwice},
		{"WrongType", testWrongType},
		{"Invalid", testInvalid},
		{"UpdateMissing", testUpdateMissing},
		{"Update", testUpdate},
		{"Deprovision", testDeprovision},
		{"Reopen", testReopen},
		{"Cancelled", testCancelled},
		{"Concurrent", testConcurrent},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.fn(t, h)
		})
	}
}

// WaitReady polls Observe until the workload is Ready and returns the last
// status and every event seen meanwhile.
func WaitReady(t *testing.T, m workload.Manager, d workload.Deployment, name string, timeout time.Duration) workload.Status {
	t.Helper()
	return WaitState(t, m, d, name, workload.Ready, timeout)
}

// WaitState polls Observe until the workload reaches want.
func WaitState(t *testing.T, m workload.Manager, d workload.Deployment, name string, want workload.State, timeout time.Duration) workload.Status {
	t.Helper()
	var events []workload.Event
	deadline := time.Now().Add(timeout)
	for {
		st, err := m.Observe(context.Background(), d, name)
		if err != nil {
			t.Fatalf("Observe(%s): %v", name, err)
		}
		events = append(events, st.Events...)
		if st.State == want {
			st.Events = events
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: state %s (%s) after %v, want %s; events %v", name, st.State, st.Reason, timeout, want, events)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func mustProvision(t *testing.T, m workload.Manager, d workload.Deployment, w spec.Workload) {
	t.Helper()
	if err := m.Provision(context.Background(), d, w); err != nil {
		t.Fatalf("Provision(%s): %v", w.Name, err)
	}
}

func mustDeprovision(t *testing.T, m workload.Manager, d workload.Deployment, name string) {
	t.Helper()
	if err := m.Deprovision(context.Background(), d, name); err != nil {
		t.Fatalf("Deprovision(%s): %v", name, err)
	}
}

func listed(t *testing.T, m workload.Manager, ref workload.Ref) int {
	t.Helper()
	refs, err := m.List(context.Background())
	if err != nil {
		t.Fatalf("List: %v", err)
	}
	n := 0
	for _, r := range refs {
		if r == ref {
			n++
		}
	}
	return n
}

func testProvisionReady(t *testing.T, h Harness) {
	m := h.New(t)
	d, w := h.Valid(t, "ready")
	mustProvision(t, m, d, w)
	st := h.waitUp(t, m, d, w.Name)
	if st.Restarts != 0 {
		t.Errorf("Restarts = %d right after Provision, want 0", st.Restarts)
	}
	if n := listed(t, m, workload.Ref{Deployment: d.ID, Name: w.Name}); n != 1 {
		t.Errorf("List has the workload %d times, want 1", n)
	}
	mustDeprovision(t, m, d, w.Name)
}

func testProvisionTwice(t *testing.T, h Harness) {
	m := h.New(t)
	d, w := h.Valid(t, "twice")
	mustProvision(t, m, d, w)
	h.waitUp(t, m, d, w.Name)
	mustProvision(t, m, d, w)
	st := h.waitUp(t, m, d, w.Name)
	if st.Restarts != 0 {
		t.Errorf("second Provision restarted the workload: Restarts = %d", st.Restarts)
	}
	if n := listed(t, m, workload.Ref{Deployment: d.ID, Name: w.Name}); n != 1 {
		t.Errorf("List has the workload %d times after two Provisions, want 1", n)
	}
	mustDeprovision(t, m, d, w.Name)
}

func testWrongType(t *testing.T, h Harness) {
	m := h.New(t)
	d, w := h.Valid(t, "wrongtype")
	w.Type = "no-such-type"
	err := m.Provision(context.Background(), d, w)
	if !workload.IsPermanent(err) || !errors.Is(err, workload.ErrWrongType) {
		t.Fatalf("Provision of a %q = %v, want a permanent ErrWrongType", w.Type, err)
	}
}

func testInvalid(t *testing.T, h Harness) {
	m := h.New(t)
	d, _ := h.Valid(t, "invalid")
	w := h.Invalid(t, "invalid")
	err := m.Provision(context.Background(), d, w)
	if !workload.IsPermanent(err) || workload.Reason(err) == "" {
		t.Fatalf("Provision(invalid) = %v, want a permanent error with a reason", err)
	}
	if _, err := m.Observe(context.Background(), d, w.Name); !errors.Is(err, workload.ErrNotFound) {
		t.Errorf("Observe after a refused Provision = %v, want ErrNotFound (nothing left behind)", err)
	}
}

func testUpdateMissing(t *testing.T, h Harness) {
	m := h.New(t)
	d, w := h.Valid(t, "missing")
	if err := m.Update(context.Background(), d, w); !errors.Is(err, workload.ErrNotFound) {
		t.Fatalf("Update of a missing workload = %v, want ErrNotFound", err)
	}
}

func testUpdate(t *testing.T, h Harness) {
	m := h.New(t)
	d, w := h.Valid(t, "update")
	mustProvision(t, m, d, w)
	h.waitUp(t, m, d, w.Name)
	w2 := h.Change(t, w)
	d.Generation++
	if err := m.Update(context.Background(), d, w2); err != nil {
		t.Fatalf("Update: %v", err)
	}
	h.waitUp(t, m, d, w.Name)
	if err := m.Update(context.Background(), d, w2); err != nil {
		t.Fatalf("Update to the same content: %v", err)
	}
	mustDeprovision(t, m, d, w.Name)
}

func testDeprovision(t *testing.T, h Harness) {
	m := h.New(t)
	d, w := h.Valid(t, "gone")
	mustDeprovision(t, m, d, w.Name) // nothing there: still fine
	mustProvision(t, m, d, w)
	h.waitUp(t, m, d, w.Name)
	mustDeprovision(t, m, d, w.Name)
	mustDeprovision(t, m, d, w.Name)
	if _, err := m.Observe(context.Background(), d, w.Name); !errors.Is(err, workload.ErrNotFound) {
		t.Errorf("Observe after Deprovision = %v, want ErrNotFound", err)
	}
	if n := listed(t, m, workload.Ref{Deployment: d.ID, Name: w.Name}); n != 0 {
		t.Errorf("List still has the workload after Deprovision")
	}
}

func testReopen(t *testing.T, h Harness) {
	m := h.New(t)
	d, w := h.Valid(t, "reopen")
	mustProvision(t, m, d, w)
	h.waitUp(t, m, d, w.Name)
	m2 := h.Reopen(t, m)
	if n := listed(t, m2, workload.Ref{Deployment: d.ID, Name: w.Name}); n != 1 {
		t.Fatalf("a reopened manager lists the workload %d times, want 1", n)
	}
	mustProvision(t, m2, d, w)
	st := h.waitUp(t, m2, d, w.Name)
	if st.Restarts != 0 {
		t.Errorf("adopting restarted the workload: Restarts = %d", st.Restarts)
	}
	if n := listed(t, m2, workload.Ref{Deployment: d.ID, Name: w.Name}); n != 1 {
		t.Errorf("after adoption List has the workload %d times, want 1", n)
	}
	mustDeprovision(t, m2, d, w.Name)
}

func testCancelled(t *testing.T, h Harness) {
	m := h.New(t)
	d, w := h.Valid(t, "cancelled")
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if err := m.Provision(ctx, d, w); !errors.Is(err, context.Canceled) {
		t.Fatalf("Provision with a cancelled context = %v, want context.Canceled", err)
	}
	mustProvision(t, m, d, w)
	h.waitUp(t, m, d, w.Name)
	mustDeprovision(t, m, d, w.Name)
}

func testConcurrent(t *testing.T, h Harness) {
	m := h.New(t)
	const n = 3
	var wg sync.WaitGroup
	errs := make(chan error, 2*n)
	type item struct {
		d workload.Deployment
		w spec.Workload
	}
	items := make([]item, n)
	for i := range items {
		items[i].d, items[i].w = h.Valid(t, fmt.Sprintf("conc%d", i))
	}
	for i := range 2 * n { // every workload provisioned twice at once
		wg.Add(1)
		go func(it item) {
			defer wg.Done()
			errs <- m.Provision(context.Background(), it.d, it.w)
		}(items[i%n])
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Errorf("concurrent Provision: %v", err)
		}
	}
	for _, it := range items {
		h.waitUp(t, m, it.d, it.w.Name)
		if c := listed(t, m, workload.Ref{Deployment: it.d.ID, Name: it.w.Name}); c != 1 {
			t.Errorf("%s listed %d times, want 1", it.w.Name, c)
		}
		mustDeprovision(t, m, it.d, it.w.Name)
	}
}
