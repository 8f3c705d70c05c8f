package main

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/node"
	"github.com/zerogrid/zerogrid/internal/overlay"
	"github.com/zerogrid/zerogrid/internal/workload/network"
)

// startOverlay brings the node onto the overlay when --overlay is set,
// and returns what its heartbeats announce.
func startOverlay(f *nodeFlags, key identity.PrivateKey, chain string, log *slog.Logger) (*overlay.Overlay, *ledger.NodeOverlay, error) {
	if f.overlay == "" {
		return nil, nil, nil
	}
	ep, err := netip.ParseAddrPort(f.overlay)
	if err != nil || ep.Port() == 0 {
		return nil, nil, fmt.Errorf("--overlay %q: want IP:PORT, the UDP endpoint other nodes reach this one at", f.overlay)
	}
	prefix, err := overlay.Prefix(chain)
	if err != nil {
		return nil, nil, err
	}
	ov, err := overlay.New(overlay.Config{Identity: key, Prefix: prefix, ListenPort: int(ep.Port()), PQGrace: f.pqGrace, Logger: log.With("module", "overlay")})
	if err != nil {
		return nil, nil, err
	}
	announce, err := node.OverlayAnnouncement(key, chain, ep)
	if err != nil {
		ov.Close()
		return nil, nil, err
	}
	log.Info("on the overlay", "address", ov.Address().String(), "endpoint", ep.String())
	return ov, announce, nil
}

// Condition types of overlayConditions.
const (
	condPQBlocked = overlay.ConditionPQBlocked
	condPQMissing = overlay.ConditionPQMissing
)

// overlayConditions is what the node reports (in its heartbeat's
// conditions) about peers whose traffic lacks post-quantum protection:
// one condition for the peers cut off past the grace period, one for
// those still reached on classical keys while the exchange is retried.
// Each names its peers (as many as the ledger's bound on a reason
// allows) and the last exchange error. nil when ov is nil or all is well.
func overlayConditions(ov *overlay.Overlay) []ledger.NodeCondition {
	if ov == nil {
		return nil
	}
	return problemConditions(ov.Problems())
}

// problemConditions is overlayConditions on a list of problems.
func problemConditions(ps []overlay.PeerProblem) []ledger.NodeCondition {
	var blocked, missing []overlay.PeerProblem
	for _, p := range ps {
		if p.Blocked {
			blocked = append(blocked, p)
		} else {
			missing = append(missing, p)
		}
	}
	var out []ledger.NodeCondition
	if len(blocked) > 0 {
		out = append(out, ledger.NodeCondition{Type: condPQBlocked,
			Reason: peerList(fmt.Sprintf("traffic stopped with %d peer(s) that had no post-quantum key within the grace period", len(blocked)), blocked)})
	}
	if len(missing) > 0 {
		out = append(out, ledger.NodeCondition{Type: condPQMissing,
			Reason: peerList(fmt.Sprintf("%d peer(s) reached on classical keys only while the post-quantum key exchange is retried", len(missing)), missing)})
	}
	return out
}

// peerList is head followed by the peers' node keys and last errors, cut
// to ledger.MaxConditionReason bytes.
func peerList(head string, ps []overlay.PeerProblem) string {
	s := head + ":"
	for i, p := range ps {
		item := " " + p.Identity.NodeString()
		if p.Err != "" {
			item += " (" + p.Err + ")"
		}
		more := fmt.Sprintf(" and %d more", len(ps)-i)
		if len(s)+len(item)+len(";")+len(more) > ledger.MaxConditionReason {
			return s + more
		}
		if i > 0 {
			s += ";"
		}
		s += item
	}
	return s
}

func overlayDev(ov *overlay.Overlay) string {
	if ov == nil {
		return ""
	}
	return ov.Tun()
}

// overlayPeers adapts the overlay to node.PeerSetter.
type overlayPeers struct{ ov *overlay.Overlay }

func (p overlayPeers) SetPeers(ctx context.Context, peers []node.OverlayPeer) error {
	out := make([]overlay.Peer, len(peers))
	for i, q := range peers {
		out[i] = overlay.Peer{Identity: q.Key, Key: overlay.Key(q.WGKey), Endpoint: q.Endpoint, Networks: q.Networks}
	}
	return p.ov.SetPeers(ctx, out)
}

// hostedNetworks adapts the network manager to node.NetworkSource.
type hostedNetworks struct{ m *network.Manager }

func (h hostedNetworks) HostedNetworks() ([]node.HostedNetwork, error) {
	hs, err := h.m.Hosted()
	if err != nil {
		return nil, err
	}
	out := make([]node.HostedNetwork, len(hs))
	for i, x := range hs {
		out[i] = node.HostedNetwork{Owner: x.Owner, Name: x.Name, Net: x.Net}
	}
	return out, nil
}
