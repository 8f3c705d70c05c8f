package workload

import (
	"fmt"

	"github.com/zerogrid/zerogrid/internal/eventlog"
	"github.com/zerogrid/zerogrid/internal/spec"
)

// Test hooks of Inmem.

// Fail makes the next mutating calls (Provision, Update, Deprovision) of
// ref return errs, one per call, before doing anything.
func (m *Inmem) Fail(ref Ref, errs ...error) {
	m.node.mu.Lock()
	defer m.node.mu.Unlock()
	m.node.faults[ref] = append(m.node.faults[ref], errs...)
}

// Crash simulates the workload's process exiting with code and being
// restarted: Restarts grows and a "restarted" event is queued.
func (m *Inmem) Crash(ref Ref, code int) error {
	return m.with(ref, func(it *inmemItem) {
		it.status.Restarts++
		it.events.Add(m.clock.Now(), eventlog.KindRestarted, fmt.Sprintf("restarted after exit code %d", code))
	})
}

// SetState forces the state the workload reports, with an event of kind
// (none when kind is empty).
func (m *Inmem) SetState(ref Ref, s State, reason, kind string) error {
	return m.with(ref, func(it *inmemItem) {
		it.status.State, it.status.Reason = s, reason
		if kind != "" {
			it.events.Add(m.clock.Now(), kind, reason)
		}
	})
}

// Workload returns what ref was last provisioned as.
func (m *Inmem) Workload(ref Ref) (spec.Workload, bool) {
	m.node.mu.Lock()
	defer m.node.mu.Unlock()
	it, ok := m.node.items[ref]
	if !ok {
		return spec.Workload{}, false
	}
	return it.w, true
}

// Counts returns what was done to ref so far, across restarts.
func (m *Inmem) Counts(ref Ref) Counts {
	m.node.mu.Lock()
	defer m.node.mu.Unlock()
	return *m.node.count(ref)
}

func (m *Inmem) with(ref Ref, fn func(*inmemItem)) error {
	m.node.mu.Lock()
	defer m.node.mu.Unlock()
	it, ok := m.node.items[ref]
	if !ok {
		return fmt.Errorf("%d/%s: %w", ref.Deployment, ref.Name, ErrNotFound)
	}
	fn(it)
	return nil
}

// fault pops the next injected error of ref. Callers hold n.mu.
func (n *inmemNode) fault(ref Ref) error {
	q := n.faults[ref]
	if len(q) == 0 {
		return nil
	}
	n.faults[ref] = q[1:]
	return q[0]
}

// count returns ref's counters. Callers hold n.mu.
func (n *inmemNode) count(ref Ref) *Counts {
	c, ok := n.counts[ref]
	if !ok {
		c = &Counts{}
		n.counts[ref] = c
	}
	return c
}
