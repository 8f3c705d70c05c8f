package gateway

import (
	"context"
	"net"
	"net/netip"

	"github.com/zerogrid/zerogrid/internal/tunnel"
)

// TunnelBackends lets the gateway reach backends through a tunnel.Server.
func TunnelBackends(s *tunnel.Server) Backends { return tunnelBackends{s} }

type tunnelBackends struct{ s *tunnel.Server }

func (b tunnelBackends) Mode(name string) (Mode, bool) {
	m, ok := b.s.Mode(name)
	if m == tunnel.ModePassthrough {
		return ModePassthrough, ok
	}
	return ModeHTTP, ok
}

func (b tunnelBackends) Dial(ctx context.Context, name string, client netip.AddrPort, mode Mode) (net.Conn, error) {
	m := tunnel.ModeHTTP
	if mode == ModePassthrough {
		m = tunnel.ModePassthrough
	}
	return b.s.Dial(ctx, name, tunnel.StreamMeta{Client: client, Mode: m})
}
