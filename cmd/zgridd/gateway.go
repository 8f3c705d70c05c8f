package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/gateway"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
	"github.com/zerogrid/zerogrid/internal/tunnel"
)

type gatewayFlags struct {
	domain, ledger, dir, trustRoot      string
	announce                            string
	listen, tunnelListen, metricsListen string
	acmeDir, acmeEmail                  string
	drain                               time.Duration
	maxConns, maxConnsPerIP             int
}

func newGatewayCmd(g *globals) *cobra.Command {
	f := &gatewayFlags{}
	cmd := &cobra.Command{
		Use:   "gateway --domain DOMAIN --ledger URL --dir DIR",
		Short: "Run a web gateway: HTTPS for NAME.DOMAIN, carried to backends over the tunnels they open",
		Long: `Serves https://NAME.DOMAIN on --listen for backends that reached this gateway
through an outbound tunnel on --tunnel-listen (QUIC on UDP, TLS on TCP, same
port). At start it announces on the ledger, signed with its key, where
that listener is (--announce): specs that name the gateway by key alone
reach it there, and nodes follow when it moves. A backend may serve a name only with a key the name's contract on
the ledger authorizes (read with proofs, verified from the trusted ledger
state in --dir). Names whose backends ask for passthrough get the raw
TLS bytes (the backend holds the certificate); the others are terminated
here and proxied as HTTP/1.1, WebSocket included, with X-Forwarded-For.

Certificates come from ACME with --acme-dir and --acme-email, otherwise from
a local CA created in --dir (ca.crt: have clients trust it). The tunnel key
is --dir/gateway.key, created on first start; backends pin its public key,
printed at start. Metrics are served on --metrics-listen at /metrics.
Routing, limits and metric names: docs/gateway.md.

Stop with Ctrl-C or SIGTERM: the gateway stops accepting, lets requests in
flight finish for --drain, then closes what is left.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runGateway(cmd, g, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.domain, "domain", "", "DNS suffix served: names are NAME.DOMAIN")
	fl.StringVar(&f.ledger, "ledger", "http://127.0.0.1:26657", "ledger RPC URL (who may serve which name)")
	fl.StringVar(&f.dir, "dir", "", "state directory: tunnel key, local CA or ACME storage, trusted ledger state (created if missing)")
	fl.StringVar(&f.trustRoot, "trust-root", "", "trust file to start verifying the ledger from, when DIR/ledger-trust.json does not exist yet (from `zgrid up` or `zgridd chain`)")
	fl.StringVar(&f.listen, "listen", ":443", "HTTPS address for clients, host:port")
	fl.StringVar(&f.tunnelListen, "tunnel-listen", ":4443", "address backends' tunnels connect to (UDP for QUIC and TCP for TLS, on one port)")
	fl.StringVar(&f.announce, "announce", "", "HOST:PORT where nodes reach the tunnel listener, announced on the ledger (default: the listener's address, when it names one host)")
	fl.StringVar(&f.metricsListen, "metrics-listen", "127.0.0.1:9100", "Prometheus metrics address (keep it on loopback; empty: off)")
	fl.StringVar(&f.acmeDir, "acme-dir", "", "ACME directory URL, e.g. https://acme-v02.api.letsencrypt.org/directory (default: local CA)")
	fl.StringVar(&f.acmeEmail, "acme-email", "", "ACME account email (with --acme-dir)")
	fl.DurationVar(&f.drain, "drain", 10*time.Second, "on shutdown, how long requests in flight may take to finish")
	fl.IntVar(&f.maxConns, "max-conns", 16384, "open client connections at most")
	fl.IntVar(&f.maxConnsPerIP, "max-conns-per-ip", 512, "open client connections per IPv4 address or IPv6 /64 at most")
	return cmd
}

func runGateway(cmd *cobra.Command, g *globals, f *gatewayFlags) error {
	if f.domain == "" || f.dir == "" {
		return errors.New("--domain DOMAIN and --dir DIR are required")
	}
	if (f.acmeDir == "") != (f.acmeEmail == "") {
		return errors.New("--acme-dir and --acme-email go together: give both for ACME, neither for the local CA")
	}
	var acme *gateway.ACMEConfig
	if f.acmeDir != "" {
		acme = &gateway.ACMEConfig{DirectoryURL: f.acmeDir, Email: f.acmeEmail}
		if err := acme.Validate(); err != nil {
			return err
		}
	}
	ctx := cmd.Context()
	log := g.logger().With("module", "gateway")
	key, err := gateway.LoadOrCreateKey(f.dir)
	if err != nil {
		return err
	}
	opts, err := client.KeepTrust(filepath.Join(f.dir, "ledger-trust.json"), f.trustRoot, nil, "")
	if err != nil {
		return err
	}
	opts.Logger = log
	lc, err := dialLedger(ctx, f.ledger, opts)
	if err != nil {
		return fmt.Errorf("ledger %s: %w", f.ledger, err)
	}
	defer lc.Close()
	metrics := gateway.NewMetrics()
	ts, err := tunnel.NewServer(tunnel.ServerConfig{
		Key: key, Authorizer: gateway.NewLedgerAuthorizer(lc, 5*time.Second),
		Logger: g.logger().With("module", "tunnel"), Observer: metrics,
	})
	if err != nil {
		return err
	}
	gw, err := gateway.New(gateway.Config{
		Domain: f.domain, Dir: f.dir, Backends: gateway.TunnelBackends(ts), Logger: log, ACME: acme, Metrics: metrics,
		Limits: gateway.Limits{MaxConns: f.maxConns, MaxConnsPerIP: f.maxConnsPerIP},
	})
	if err != nil {
		return err
	}
	lns, err := listenGateway(f)
	if err != nil {
		return errors.Join(err, gw.Close())
	}
	tctx, stopTunnels := context.WithCancel(context.Background())
	defer stopTunnels()
	errc := make(chan error, 4)
	go func() { errc <- ts.ServeQUIC(tctx, lns.udp) }()
	go func() { errc <- ts.ServeTLS(tctx, lns.tunnel) }()
	go func() { errc <- gw.Serve(lns.https) }()
	var msrv *http.Server
	if lns.metrics != nil {
		mux := http.NewServeMux()
		mux.Handle("/metrics", metrics.Handler())
		msrv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
		go msrv.Serve(lns.metrics)
	}
	addr, err := gateway.AnnounceAddress(f.announce, lns.tunnel.Addr())
	if err == nil {
		var id uint64
		if id, err = gateway.Announce(ctx, lc, key, addr); err == nil {
			log.Info("announced on the ledger", "gateway", id, "tunnels", addr)
		}
	}
	if err != nil {
		stopTunnels()
		return errors.Join(err, gw.Close(), ts.Close())
	}
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "gateway ready: https://*.%s on %s, tunnels on %s (quic+tls)\n", f.domain, lns.https.Addr(), lns.tunnel.Addr())
	fmt.Fprintf(out, "gateway key: %s\n", key.Public())
	if acme == nil {
		fmt.Fprintf(out, "CA certificate: %s\n", filepath.Join(f.dir, gateway.CACertFile))
	}
	if lns.metrics != nil {
		fmt.Fprintf(out, "metrics: http://%s/metrics\n", lns.metrics.Addr())
		if a, ok := lns.metrics.Addr().(*net.TCPAddr); ok && !a.IP.IsLoopback() {
			log.Warn("metrics are served beyond loopback: anyone who reaches the address sees every name's traffic", "addr", a)
		}
	}
	select {
	case <-ctx.Done():
		log.Info("draining", "for", f.drain)
	case err = <-errc:
		log.Error("listener failed", "err", err)
	}
	dctx, cancel := context.WithTimeout(context.Background(), f.drain)
	defer cancel()
	serr := gw.Shutdown(dctx)
	stopTunnels()
	ts.Close() // waits for the tunnels' goroutines
	if msrv != nil {
		msrv.Close()
	}
	if errors.Is(err, gateway.ErrClosed) || errors.Is(err, tunnel.ErrServerClosed) {
		err = nil
	}
	return errors.Join(err, serr)
}

type gatewayListeners struct {
	https, tunnel, metrics net.Listener
	udp                    net.PacketConn
}

func listenGateway(f *gatewayFlags) (*gatewayListeners, error) {
	var l gatewayListeners
	var err error
	closeAll := func() {
		for _, c := range []interface{ Close() error }{l.https, l.tunnel, l.metrics, l.udp} {
			if c != nil {
				c.Close()
			}
		}
	}
	if l.https, err = net.Listen("tcp", f.listen); err != nil {
		return nil, fmt.Errorf("--listen %s: %w", f.listen, err)
	}
	if l.tunnel, err = net.Listen("tcp", f.tunnelListen); err != nil {
		closeAll()
		return nil, fmt.Errorf("--tunnel-listen %s (TCP): %w", f.tunnelListen, err)
	}
	// QUIC on the same port TCP got (also when the flag asked for port 0).
	if l.udp, err = net.ListenPacket("udp", l.tunnel.Addr().String()); err != nil {
		closeAll()
		return nil, fmt.Errorf("--tunnel-listen %s (UDP): %w", f.tunnelListen, err)
	}
	if f.metricsListen != "" {
		if l.metrics, err = net.Listen("tcp", f.metricsListen); err != nil {
			closeAll()
			return nil, fmt.Errorf("--metrics-listen %s: %w", f.metricsListen, err)
		}
	}
	return &l, nil
}
