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
	ov, err := overlay.New(overlay.Config{Identity: key, Prefix: prefix, ListenPort: int(ep.Port()), Logger: log.With("module", "overlay")})
	if err != nil {
		return nil, nil, err
	}
	pub := ov.PublicKey()
	log.Info("on the overlay", "address", ov.Address().String(), "endpoint", ep.String())
	return ov, &ledger.NodeOverlay{Key: pub[:], Endpoint: ep.String()}, nil
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
