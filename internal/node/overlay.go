package node

import (
	"context"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload/network"
)

// OverlayPeer is another node as the overlay needs it, from its ledger
// record.
type OverlayPeer struct {
	Node     uint64
	Key      identity.PublicKey // the node's identity key
	WGKey    [32]byte           // its WireGuard public key
	Endpoint netip.AddrPort
	// Networks are the peer's /64s in the private networks both nodes
	// serve: the overlay accepts packets from those sources too.
	Networks []netip.Prefix
}

// HostedNetwork is a private network this node serves.
type HostedNetwork struct {
	Owner uint64
	Name  string
	Net   netip.Prefix // its /48
}

// NetworkSource lists the private networks this node serves.
type NetworkSource interface {
	HostedNetworks() ([]HostedNetwork, error)
}

// PeerSetter is the overlay data plane as the node drives it. SetPeers
// replaces the peer set; peers that did not change keep their sessions.
type PeerSetter interface {
	SetPeers(ctx context.Context, peers []OverlayPeer) error
}

// NodeLister lists the ledger's nodes and a twin's contracts
// (client.Client does).
type NodeLister interface {
	Nodes(ctx context.Context) ([]ledger.Node, error)
	ContractsByTwin(ctx context.Context, twin uint64) ([]ledger.Contract, error)
}

// OverlayAnnouncement is what a node's heartbeats announce for its overlay
// on chain: its WireGuard public key (derived from key), the UDP endpoint
// peers reach it at, and its proof of holding the key, which the ledger
// checks (identity.ProveOverlayKey).
func OverlayAnnouncement(key identity.PrivateKey, chain string, endpoint netip.AddrPort) (*ledger.NodeOverlay, error) {
	pub, err := key.OverlayPublicKey()
	if err != nil {
		return nil, err
	}
	proof, err := key.OverlayKeyProof(chain)
	if err != nil {
		return nil, err
	}
	return &ledger.NodeOverlay{Key: pub[:], Endpoint: endpoint.String(), Proof: proof[:]}, nil
}

// OverlayPeers returns the peers the ledger lists for node self: every
// other node that announces an overlay key and endpoint and was not
// removed from its farm, in node id order, each with its /64s in the
// networks of members (from networkMembers).
func OverlayPeers(nodes []ledger.Node, self uint64, members map[uint64][]netip.Prefix) []OverlayPeer {
	var out []OverlayPeer
	for _, n := range nodes {
		if n.ID == self || n.Removed != 0 || n.Overlay == nil || len(n.Overlay.Key) != 32 {
			continue
		}
		ep, err := netip.ParseAddrPort(n.Overlay.Endpoint)
		if err != nil {
			continue // the ledger checks endpoints; skip rather than trust
		}
		out = append(out, OverlayPeer{Node: n.ID, Key: n.Key, WGKey: [32]byte(n.Overlay.Key), Endpoint: ep, Networks: members[n.ID]})
	}
	return out
}

// FollowOverlay keeps the overlay's peers equal to what the ledger lists,
// checking every interval until ctx ends: a node that joins is added, one
// that is removed from its farm or leaves the overlay is dropped within an
// interval, and each peer's /64s in the networks this node serves (nets,
// may be nil) follow the contracts that place members on it. Failures are
// logged and retried at the next interval.
func FollowOverlay(ctx context.Context, l NodeLister, self uint64, nets NetworkSource, ov PeerSetter, every time.Duration, log *slog.Logger) {
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
		var members map[uint64][]netip.Prefix
		if nets != nil {
			hosted, err := nets.HostedNetworks()
			if err == nil {
				members, err = networkMembers(ctx, l, hosted, removedNodes(nodes))
			}
			if err != nil {
				if ctx.Err() == nil {
					log.Warn("overlay: network members", "err", err)
				}
				return
			}
		}
		peers := OverlayPeers(nodes, self, members)
		if applied && slices.EqualFunc(peers, last, samePeer) {
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

// networkMembers returns, per node id, that node's /64s in the networks
// this node serves: the nodes that accepted a live contract of the
// network's owner declaring a network of that name, except the nodes
// their farm removed.
func networkMembers(ctx context.Context, l NodeLister, hosted []HostedNetwork, removed map[uint64]bool) (map[uint64][]netip.Prefix, error) {
	out := map[uint64][]netip.Prefix{}
	byOwner := map[uint64][]ledger.Contract{}
	for _, h := range hosted {
		cs, ok := byOwner[h.Owner]
		if !ok {
			var err error
			if cs, err = l.ContractsByTwin(ctx, h.Owner); err != nil {
				return nil, err
			}
			byOwner[h.Owner] = cs
		}
		for _, c := range cs {
			if !liveContract(c.State) || removed[c.Node] || !declaresNetwork(c.Spec, h.Name) {
				continue
			}
			sub, err := network.NodeSubnet(h.Net, c.Node)
			if err != nil {
				continue // a node id beyond what networks address; it cannot join
			}
			if !slices.Contains(out[c.Node], sub) {
				out[c.Node] = append(out[c.Node], sub)
			}
		}
	}
	return out, nil
}

// removedNodes are the ids of the nodes their farm removed.
func removedNodes(nodes []ledger.Node) map[uint64]bool {
	out := map[uint64]bool{}
	for _, n := range nodes {
		if n.Removed != 0 {
			out[n.ID] = true
		}
	}
	return out
}

func liveContract(state string) bool {
	return state == ledger.StateAccepted || state == ledger.StateReady || state == ledger.StateDegraded
}

func declaresNetwork(raw []byte, name string) bool {
	s, err := spec.Decode(raw)
	if err != nil {
		return false
	}
	n := s.Network()
	return n != nil && n.Name == name
}

func samePeer(a, b OverlayPeer) bool {
	return a.Node == b.Node && a.Key == b.Key && a.WGKey == b.WGKey && a.Endpoint == b.Endpoint && slices.Equal(a.Networks, b.Networks)
}
