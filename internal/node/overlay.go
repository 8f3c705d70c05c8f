package node

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
)

// OverlayPeer is another node as the overlay needs it, from its ledger
// record.
type OverlayPeer struct {
	Node     uint64
	Key      identity.PublicKey // the node's identity key
	WGKey    [32]byte           // its WireGuard public key
	Endpoint netip.AddrPort
}

// PeerSetter is the overlay data plane as the node drives it. SetPeers
// replaces the peer set; peers that did not change keep their sessions.
type PeerSetter interface {
	SetPeers(ctx context.Context, peers []OverlayPeer) error
}

// NodeLister lists the ledger's nodes (client.Client does).
type NodeLister interface {
	Nodes(ctx context.Context) ([]ledger.Node, error)
}

// OverlayPeers returns the peers the ledger lists for node self: every
// other node that announces an overlay key and endpoint and was not
// removed from its farm, in node id order.
func OverlayPeers(nodes []ledger.Node, self uint64) []OverlayPeer {
	var out []OverlayPeer
	for _, n := range nodes {
		if n.ID == self || n.Removed != 0 || n.Overlay == nil || len(n.Overlay.Key) != 32 {
			continue
		}
		ep, err := netip.ParseAddrPort(n.Overlay.Endpoint)
		if err != nil {
			continue // the ledger checks endpoints; skip rather than trust
		}
		out = append(out, OverlayPeer{Node: n.ID, Key: n.Key, WGKey: [32]byte(n.Overlay.Key), Endpoint: ep})
	}
	return out
}

// FollowOverlay keeps the overlay's peers equal to what the ledger lists,
// checking every interval until ctx ends: a node that joins is added, one
// that is removed from its farm or leaves the overlay is dropped within an
// interval. Failures are logged and retried at the next interval.
func FollowOverlay(ctx context.Context, l NodeLister, self uint64, ov PeerSetter, every time.Duration, log *slog.Logger) {
	var last []OverlayPeer
	applied := false
	sync := func() {
		nodes, err := l.Nodes(ctx)
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("overlay: list nodes", "err", err)
			}
			return
		}
		peers := OverlayPeers(nodes, self)
		if applied && slices.Equal(peers, last) {
			return
		}
		if err := ov.SetPeers(ctx, peers); err != nil {
			if ctx.Err() == nil {
				log.Warn("overlay: set peers", "err", err)
			}
			return
		}
		log.Info("overlay peers", "count", len(peers))
		last, applied = peers, true
	}
	sync()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			sync()
		}
	}
}
