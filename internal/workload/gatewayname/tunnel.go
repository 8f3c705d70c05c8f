package gatewayname

import (
	"context"
	"log/slog"
	"sort"
	"strings"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/tunnel"
)

// NewTunnel returns Config.Open for a node: each route gets a tunnel
// client that signs with the node's key, which the gateways find on the
// ledger among the name's servers.
func NewTunnel(key identity.PrivateKey, log *slog.Logger) func(Route) (Tunnel, error) {
	return func(r Route) (Tunnel, error) {
		mode := tunnel.ModeHTTP
		if r.Mode == spec.GatewayModePassthrough {
			mode = tunnel.ModePassthrough
		}
		cfg := tunnel.ClientConfig{
			Key:    key,
			Names:  []tunnel.Route{{Name: r.Name, Mode: mode, Target: r.Target.String(), ProxyProtocol: r.ProxyProtocol}},
			Logger: log.With("public_name", r.Name),
		}
		for _, g := range r.Gateways {
			cfg.Gateways = append(cfg.Gateways, tunnel.Gateway{Addr: g.Address, Key: g.Key})
		}
		c, err := tunnel.NewClient(cfg)
		if err != nil {
			return nil, err
		}
		return clientTunnel{c}, nil
	}
}

type clientTunnel struct{ c *tunnel.Client }

func (t clientTunnel) Run(ctx context.Context) error { return t.c.Run(ctx) }

// Health counts the gateways with a tunnel up that accepted the name and
// reports the latest reason one is not serving it.
func (t clientTunnel) Health() Health {
	st := t.c.Status()
	h := Health{Total: len(st)}
	var problems []string
	for _, s := range st {
		if s.Connected && len(s.Refused) == 0 {
			h.Connected++
			continue
		}
		switch {
		case len(s.Refused) > 0:
			for name, why := range s.Refused {
				problems = append(problems, s.Addr+" refused "+name+": "+why)
			}
		case s.LastError != "":
			problems = append(problems, s.Addr+": "+s.LastError)
		}
	}
	sort.Strings(problems)
	h.Problem = strings.Join(problems, "; ")
	return h
}
