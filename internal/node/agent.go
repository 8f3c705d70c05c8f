package node

import (
	"context"
	"errors"
	"log/slog"
	"sync"
	"time"

	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
)

// Agent is a node agent's long-running loops: the reconciler, the
// heartbeat and, on the overlay, the follower that keeps the overlay's
// peers equal to the ledger's nodes. Run owns their goroutines: it starts
// them and returns only after every one has returned, so whoever built
// what they use (the ledger client, the overlay device, the workload
// managers) may close it as soon as Run returns.
type Agent struct {
	Reconciler *Reconciler

	// Signer sends the heartbeats (share it with the reconciler: one
	// key's sequence numbers come from one place). Report builds each
	// heartbeat; HeartbeatEvery is the interval between them.
	Signer         *client.Signer
	Report         func() (*ledger.NodeHeartbeat, error)
	HeartbeatEvery time.Duration

	// Overlay is the overlay's data plane; nil when the node is not on
	// the overlay, and then the fields below are not used. Nodes lists
	// the ledger's nodes and contracts; Networks the private networks
	// this node serves (nil: none); OverlayEvery is how often the peers
	// are compared with the ledger.
	Overlay      PeerSetter
	Nodes        NodeLister
	NodeID       uint64
	Networks     NetworkSource
	OverlayEvery time.Duration

	Logger *slog.Logger
}

// Run runs the loops until ctx ends or the reconciler stops, and returns
// the reconciler's error once every loop has returned.
func (a Agent) Run(ctx context.Context) error {
	if a.Reconciler == nil || a.Signer == nil || a.Report == nil || a.HeartbeatEvery <= 0 {
		return errors.New("node: an agent needs a reconciler, a signer, a heartbeat report and its interval")
	}
	if a.Overlay != nil && (a.Nodes == nil || a.OverlayEvery <= 0) {
		return errors.New("node: an agent on the overlay needs the ledger's node list and an interval")
	}
	log := a.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { Heartbeat(ctx, a.Signer, a.Report, a.HeartbeatEvery, log) })
	if a.Overlay != nil {
		wg.Go(func() { FollowOverlay(ctx, a.Nodes, a.NodeID, a.Networks, a.Overlay, a.OverlayEvery, log) })
	}
	err := a.Reconciler.Run(ctx)
	cancel()
	wg.Wait()
	return err
}
