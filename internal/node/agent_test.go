package node

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
)

type peerFunc func(context.Context, []OverlayPeer) error

func (f peerFunc) SetPeers(ctx context.Context, p []OverlayPeer) error { return f(ctx, p) }

// TestAgentWaitsForItsLoops stops an agent while its heartbeat and its
// overlay follower are busy and still finishing after the stop: Run
// returns only once both are done, so what its caller closes next (the
// ledger client, the overlay device) is never used after it was closed.
func TestAgentWaitsForItsLoops(t *testing.T) {
	t.Parallel()
	g := newGrid(t)
	clock := workload.SystemClock{}
	r, err := NewReconciler(Config{Client: g.c, Key: g.nodeKey, NodeID: g.nodeID, DataDir: t.TempDir(),
		Managers: map[string]workload.Manager{spec.TypeVolume: workload.NewInmem(spec.TypeVolume, clock)}})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	var closed atomic.Bool // what the agent's caller closes once Run returns
	var late atomic.Int32  // loops that were still at work after that
	busy, finished := make(chan string, 2), make(chan string, 2)
	var beats atomic.Int32
	linger := func(what string) {
		busy <- what
		<-ctx.Done()
		time.Sleep(200 * time.Millisecond) // a call that takes a while to notice the stop
		if closed.Load() {
			late.Add(1)
		}
		finished <- what
	}
	a := Agent{Reconciler: r, Signer: g.c.Signer(g.nodeKey), HeartbeatEvery: time.Hour,
		Report: func() (*ledger.NodeHeartbeat, error) {
			if beats.Add(1) == 1 {
				linger("heartbeat")
			}
			return &ledger.NodeHeartbeat{Types: spec.AllTypes}, nil
		},
		Overlay: peerFunc(func(context.Context, []OverlayPeer) error { linger("overlay follower"); return nil }),
		Nodes:   g.c, NodeID: g.nodeID, OverlayEvery: time.Hour,
	}
	done := make(chan error, 1)
	go func() { done <- a.Run(ctx) }()
	for range 2 {
		select {
		case <-busy:
		case <-time.After(30 * time.Second):
			t.Fatal("the agent's loops never started")
		}
	}
	cancel()
	<-done // an error is possible here: the stop may come before the reconciler read the ledger
	closed.Store(true)
	for range 2 {
		select {
		case what := <-finished:
			if late.Load() > 0 {
				t.Fatalf("the %s was still at work after Run returned", what)
			}
		case <-time.After(30 * time.Second):
			t.Fatal("a loop never finished")
		}
	}
}
