package gateway

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
)

// Announce records on the ledger, signed with the gateway's key, that its
// tunnel listener is at addr (HOST:PORT), unless the ledger says so
// already. Specs that name the gateway by key alone reach it there; a
// gateway that restarts on another address announces again and nodes
// follow. It returns the gateway's id on the ledger.
func Announce(ctx context.Context, c *client.Client, key identity.PrivateKey, addr string) (uint64, error) {
	g, err := c.Gateway(ctx, key.Public())
	switch {
	case err == nil && g.Address == addr:
		return g.ID, nil
	case err != nil && !errors.Is(err, client.ErrNotFound):
		return 0, fmt.Errorf("read this gateway's record on the ledger: %w", err)
	}
	res, err := c.Signer(key).Submit(ctx, ledger.Op{GatewayAnnounce: &ledger.GatewayAnnounce{Address: addr}})
	if err != nil {
		return 0, fmt.Errorf("announce the tunnel address %s on the ledger: %w", addr, err)
	}
	return res.ID, nil
}

// AnnounceAddress is the address to announce for a tunnel listener bound
// at bound: announce when given, else bound itself when it names one host
// (not 0.0.0.0 or ::), else an error saying to pass one.
func AnnounceAddress(announce string, bound net.Addr) (string, error) {
	if announce != "" {
		return announce, nil
	}
	ap, err := netip.ParseAddrPort(bound.String())
	if err != nil || ap.Addr().IsUnspecified() {
		return "", fmt.Errorf("the tunnel listener (%s) is on every address: pass --announce HOST:PORT, where nodes reach it", bound)
	}
	return ap.String(), nil
}
