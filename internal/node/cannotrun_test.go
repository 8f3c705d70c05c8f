package node

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
)

// TestRefusesTypesItCannotRun: a contract created while the node still
// said it ran containers reaches a node that has no container manager (runc
// was removed). The node never accepts it and reports every workload
// Failed with the reason it has no manager, within 5 s; nothing runs.
func TestRefusesTypesItCannotRun(t *testing.T) {
	t.Parallel()
	g := newGrid(t) // its heartbeat listed every type
	id := g.deploy(g.user, webSpec(t))
	vol := workload.NewInmem(spec.TypeVolume, workload.SystemClock{})
	const why = "runc is not installed (Debian package runc)"
	r, err := NewReconciler(Config{Client: g.c, Key: g.nodeKey, NodeID: g.nodeID, DataDir: t.TempDir(),
		Managers:  map[string]workload.Manager{spec.TypeVolume: vol},
		CannotRun: map[string]string{spec.TypeContainer: why},
		Resync:    time.Second, Tick: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	defer func() { cancel(); <-done }()

	deadline := time.Now().Add(5 * time.Second)
	var c *ledger.Contract
	for {
		c, err = g.c.Contract(t.Context(), id)
		if err == nil && len(c.Workloads) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no refusal reported within 5 s: %+v, %v", c, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if c.Accepted != 0 || c.State != ledger.StateFailed {
		t.Errorf("contract accepted %d, state %s: want never accepted, failed", c.Accepted, c.State)
	}
	for _, w := range c.Workloads {
		if w.State != ledger.WorkloadFailed || !strings.Contains(w.Reason, "cannot run container workloads: "+why) {
			t.Errorf("workload %s: %s %q, want failed with %q", w.Name, w.State, w.Reason, why)
		}
	}
	if n := vol.Counts(workload.Ref{Deployment: id, Name: "data"}).Creates; n != 0 {
		t.Errorf("the volume of a refused contract was created %d times", n)
	}
}

// refusing is a manager that would refuse every workload of a deployment
// (as the network manager does a network whose prefix is taken here).
type refusing struct{ *workload.Inmem }

func (refusing) Admit(_ context.Context, _ workload.Deployment, w spec.Workload) error {
	return workload.Permanent(workload.ErrInvalid, "volume %s: taken on this node", w.Name)
}

// TestRefusesWhatAManagerWouldRefuse: a manager that can tell before the
// contract is accepted that it would refuse a workload (workload.Admitter)
// makes the node refuse the contract: never accepted, nothing created.
func TestRefusesWhatAManagerWouldRefuse(t *testing.T) {
	t.Parallel()
	g := newGrid(t)
	id := g.deploy(g.user, webSpec(t))
	clock := workload.SystemClock{}
	ctr, vol := workload.NewInmem(spec.TypeContainer, clock), workload.NewInmem(spec.TypeVolume, clock)
	r, err := NewReconciler(Config{Client: g.c, Key: g.nodeKey, NodeID: g.nodeID, DataDir: t.TempDir(),
		Managers: map[string]workload.Manager{spec.TypeContainer: ctr, spec.TypeVolume: refusing{vol}},
		Resync:   time.Second, Tick: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	c := g.wait(id, "refused", func(c *ledger.Contract) bool { return c.State == ledger.StateFailed })
	if c.Accepted != 0 || !strings.Contains(c.Reason, "taken on this node") {
		t.Errorf("contract accepted %d, reason %q", c.Accepted, c.Reason)
	}
	for _, ref := range []workload.Ref{{Deployment: id, Name: "web"}, {Deployment: id, Name: "data"}} {
		if n := ctr.Counts(ref).Creates + vol.Counts(ref).Creates; n != 0 {
			t.Errorf("%s of a refused contract was created", ref.Name)
		}
	}
}

// TestGateHoldsNewContracts: while the gate says no (the node runs a
// release below a signed minimum), a new contract is not accepted and
// nothing is created; once it says yes, the contract is accepted and runs.
func TestGateHoldsNewContracts(t *testing.T) {
	t.Parallel()
	g := newGrid(t)
	id := g.deploy(g.user, webSpec(t))
	clock := workload.SystemClock{}
	ctr, vol := workload.NewInmem(spec.TypeContainer, clock), workload.NewInmem(spec.TypeVolume, clock)
	var open atomic.Bool
	r, err := NewReconciler(Config{Client: g.c, Key: g.nodeKey, NodeID: g.nodeID, DataDir: t.TempDir(),
		Managers: map[string]workload.Manager{spec.TypeContainer: ctr, spec.TypeVolume: vol},
		Gate: func() error {
			if open.Load() {
				return nil
			}
			return errors.New("release 2 or newer is required; this node runs 1")
		},
		Resync: 200 * time.Millisecond, Tick: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{})
	go func() { defer close(done); _ = r.Run(ctx) }()
	defer func() { cancel(); <-done }()
	time.Sleep(600 * time.Millisecond) // 30 blocks of the in-memory ledger; a contract expires after 120
	c, err := g.c.Contract(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if c.Accepted != 0 || vol.Counts(workload.Ref{Deployment: id, Name: "data"}).Creates != 0 {
		t.Fatalf("a closed gate let the contract through: accepted %d", c.Accepted)
	}
	open.Store(true)
	deadline := time.Now().Add(20 * time.Second)
	for c.Accepted == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("not accepted after the gate opened: %+v", c)
		}
		time.Sleep(100 * time.Millisecond)
		if c, err = g.c.Contract(t.Context(), id); err != nil {
			t.Fatal(err)
		}
	}
}
