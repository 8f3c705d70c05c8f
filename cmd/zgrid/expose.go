package main

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"os/signal"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/tunnel"
)

// newExposeCmd serves a local port at NAME through one or more gateways,
// over tunnels this machine dials out (no inbound port needed).
func newExposeCmd(g *globals) *cobra.Command {
	var (
		to, mode    string
		gateways    []string
		gatewayKeys []string
		proxyProto  bool
	)
	cmd := &cobra.Command{
		Use:   "expose NAME --to 127.0.0.1:PORT --gateway HOST:PORT --gateway-key zgpub1...",
		Short: "Serve a local port at a gateway name through an outbound tunnel",
		Long: `Expose keeps a tunnel from this machine to each gateway (QUIC, or TLS over
TCP when UDP is blocked) and serves NAME through it from the local address
given by --to. Your key (--key) must be authorized for NAME on the ledger
(` + "`zgrid name claim` / `zgrid name authorize`" + `). Runs until interrupted.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			cfg, err := exposeConfig(args[0], to, mode, gateways, gatewayKeys, proxyProto)
			if err != nil {
				return err
			}
			kf, err := g.loadKey()
			if err != nil {
				return err
			}
			cfg.Key = kf.Key
			cfg.Logger = slog.New(slog.NewTextHandler(g.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			c, err := tunnel.NewClient(cfg)
			if err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGINT, syscall.SIGTERM)
			defer stop()
			fmt.Fprintf(g.stdout, "exposing %s (%s) from %s as %s\n", args[0], cfg.Names[0].Mode, to, kf.Public())
			go reportStatus(ctx, g, c)
			return c.Run(ctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&to, "to", "", "local address to serve, host:port (required)")
	f.StringArrayVar(&gateways, "gateway", nil, "gateway address host:port, UDP and TCP (repeat for several)")
	f.StringArrayVar(&gatewayKeys, "gateway-key", nil, "the gateway's key zgpub1... (one per --gateway, same order)")
	f.StringVar(&mode, "mode", "http", "http (the gateway terminates TLS) or passthrough (TLS by SNI reaches --to)")
	f.BoolVar(&proxyProto, "proxy-protocol", false, "write a PROXY v2 header with the client's address to --to first")
	return cmd
}

// exposeConfig turns the flags into a client configuration, saying which
// flag is wrong.
func exposeConfig(name, to, mode string, gateways, keys []string, proxyProto bool) (tunnel.ClientConfig, error) {
	var cfg tunnel.ClientConfig
	if _, _, err := net.SplitHostPort(to); err != nil {
		return cfg, fmt.Errorf("--to %q: want host:port of the local service, e.g. 127.0.0.1:8080", to)
	}
	r := tunnel.Route{Name: name, Target: to, ProxyProtocol: proxyProto}
	switch mode {
	case "http":
		r.Mode = tunnel.ModeHTTP
	case "passthrough":
		r.Mode = tunnel.ModePassthrough
	default:
		return cfg, fmt.Errorf("--mode %q: want http or passthrough", mode)
	}
	if len(gateways) == 0 || len(gateways) != len(keys) {
		return cfg, fmt.Errorf("give each --gateway HOST:PORT its --gateway-key zgpub1... (%d gateways, %d keys)", len(gateways), len(keys))
	}
	for i, a := range gateways {
		if _, _, err := net.SplitHostPort(a); err != nil {
			return cfg, fmt.Errorf("--gateway %q: want host:port", a)
		}
		k, err := identity.ParsePublicKey(keys[i])
		if err != nil {
			return cfg, fmt.Errorf("--gateway-key %q: %w", keys[i], err)
		}
		cfg.Gateways = append(cfg.Gateways, tunnel.Gateway{Addr: a, Key: k})
	}
	cfg.Names = []tunnel.Route{r}
	return cfg, nil
}

// reportStatus prints a line whenever a gateway's tunnel changes state.
func reportStatus(ctx context.Context, g *globals, c *tunnel.Client) {
	last := map[string]string{}
	t := time.NewTicker(200 * time.Millisecond)
	defer t.Stop()
	for {
		for _, s := range c.Status() {
			line := fmt.Sprintf("connected via %s to %s", s.Transport, s.Addr)
			if !s.Connected {
				line = fmt.Sprintf("not connected to %s (attempt %d): %s", s.Addr, s.Reconnects, s.LastError)
			}
			for n, why := range s.Refused {
				line += fmt.Sprintf("; %s refused: %s", n, why)
			}
			if line != last[s.Addr] && (s.Connected || s.Reconnects > 0) {
				fmt.Fprintln(g.stdout, line)
				last[s.Addr] = line
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
