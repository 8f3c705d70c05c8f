package tunnel

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/zerogrid/zerogrid/internal/identity"
)

// Route is one name a backend serves and where its bytes go locally.
type Route struct {
	Name          string
	Mode          Mode
	Target        string // host:port the backend dials for each stream
	ProxyProtocol bool   // write a PROXY v2 header to Target first (passthrough)
}

// Gateway is one gateway a backend keeps a tunnel to. The same port
// serves QUIC (UDP) and TLS (TCP).
type Gateway struct {
	Addr string
	Key  identity.PublicKey
}

// ClientConfig configures a Client. Zero durations take the defaults shown.
type ClientConfig struct {
	Key      identity.PrivateKey
	Names    []Route
	Gateways []Gateway
	Logger   *slog.Logger

	Heartbeat     time.Duration // ping interval; 3 missed pongs end the tunnel (10 s)
	FallbackAfter time.Duration // how long QUIC may take before TCP is tried (3 s)
	MaxBackoff    time.Duration // reconnect delay cap (30 s)
	// ReprobeQUIC is how often a tunnel that fell back to TLS over TCP
	// tries QUIC again; when QUIC answers, the tunnel moves to it (5 min).
	ReprobeQUIC time.Duration

	// Clock times heartbeats, reconnect backoff, QUIC re-probes and the
	// hello's expiry; the system clock when nil. FallbackAfter is a
	// network timeout and stays on real time.
	Clock Clock
}

// GatewayStatus is one gateway's tunnel as seen by the backend.
type GatewayStatus struct {
	Addr       string
	Connected  bool
	Transport  Transport // of the current or last tunnel
	Since      time.Time // when the current tunnel came up, or the last went down
	Reconnects int       // tunnels lost or attempts failed since Run started
	LastError  string
	Refused    map[string]string // name → reason, from the last hello
}

// Client is a backend's end of tunnels. Run it once; Run returns after
// every goroutine it started has ended.
type Client struct {
	cfg    ClientConfig
	log    *slog.Logger
	clock  Clock
	routes map[string]Route

	mu     sync.Mutex
	status []GatewayStatus
}

// NewClient checks cfg and returns a client.
func NewClient(cfg ClientConfig) (*Client, error) {
	if cfg.Key.IsZero() {
		return nil, errors.New("tunnel: ClientConfig.Key is empty; pass the backend's identity key")
	}
	if len(cfg.Gateways) == 0 || len(cfg.Names) == 0 {
		return nil, errors.New("tunnel: ClientConfig needs at least one gateway and one name")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = defaultHeartbeat
	}
	if cfg.FallbackAfter <= 0 {
		cfg.FallbackAfter = 3 * time.Second
	}
	if cfg.MaxBackoff <= 0 {
		cfg.MaxBackoff = 30 * time.Second
	}
	if cfg.ReprobeQUIC <= 0 {
		cfg.ReprobeQUIC = 5 * time.Minute
	}
	if cfg.Clock == nil {
		cfg.Clock = systemClock{}
	}
	c := &Client{cfg: cfg, log: cfg.Logger, clock: cfg.Clock, routes: map[string]Route{}}
	decl := make([]RouteDecl, 0, len(cfg.Names))
	for _, r := range cfg.Names {
		if _, dup := c.routes[r.Name]; dup {
			return nil, fmt.Errorf("tunnel: name %q listed twice", r.Name)
		}
		if r.Target == "" {
			return nil, fmt.Errorf("tunnel: name %q has no target address", r.Name)
		}
		c.routes[r.Name] = r
		decl = append(decl, RouteDecl{Name: r.Name, Mode: r.Mode})
	}
	probe := helloBody{Version: Version, Routes: decl}
	if err := probe.check(); err != nil {
		return nil, err
	}
	for _, g := range cfg.Gateways {
		if g.Key.IsZero() || g.Addr == "" {
			return nil, errors.New("tunnel: every gateway needs an address and a key (zgpub1…)")
		}
		c.status = append(c.status, GatewayStatus{Addr: g.Addr})
	}
	return c, nil
}

// Status returns a snapshot of every gateway's tunnel.
func (c *Client) Status() []GatewayStatus {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := make([]GatewayStatus, len(c.status))
	copy(out, c.status)
	return out
}

func (c *Client) update(i int, f func(*GatewayStatus)) {
	c.mu.Lock()
	f(&c.status[i])
	c.mu.Unlock()
}

// Run keeps one tunnel per gateway up until ctx ends, reconnecting with
// jittered exponential backoff forever. It returns nil when ctx ends,
// once every goroutine it started (streams included) has ended.
func (c *Client) Run(ctx context.Context) error {
	var wg sync.WaitGroup
	for i, g := range c.cfg.Gateways {
		wg.Go(func() { c.keep(ctx, i, g) })
	}
	wg.Wait()
	return nil
}

// keep is one gateway's reconnect loop. The transport that last worked is
// tried first; the other one only when it fails.
func (c *Client) keep(ctx context.Context, i int, g Gateway) {
	prefer := TransportQUIC
	failures := 0
	var next session // a QUIC session a probe opened, to move to
	for ctx.Err() == nil {
		sess, err := next, error(nil)
		next = nil
		if sess == nil {
			sess, err = c.connect(ctx, g, prefer)
		}
		if err == nil {
			prefer = sess.Transport()
			start := c.clock.Now()
			var up bool
			up, next, err = c.serveProbing(ctx, i, g, sess)
			if up && c.clock.Now().Sub(start) >= c.cfg.MaxBackoff {
				failures = 0 // it was a good tunnel; a flapping one keeps backing off
			}
			if next != nil && ctx.Err() == nil {
				c.log.Info("QUIC answers again; moving the tunnel off TLS over TCP", "gateway", g.Addr)
				continue
			}
		}
		if ctx.Err() != nil {
			if next != nil {
				next.Close()
			}
			return
		}
		failures++
		c.update(i, func(s *GatewayStatus) {
			s.Connected = false
			s.Reconnects++
			s.LastError = err.Error()
			s.Since = c.clock.Now()
		})
		d := backoff(failures, c.cfg.MaxBackoff)
		c.log.Warn("tunnel down; reconnecting", "gateway", g.Addr, "err", err, "in", d.Round(time.Millisecond))
		select {
		case <-ctx.Done():
			return
		case <-c.clock.After(d):
		}
	}
}

// serveProbing serves sess; when it is TLS over TCP it also tries QUIC
// every ReprobeQUIC, and on success ends sess and returns the QUIC
// session as next (opened before the old one is closed).
func (c *Client) serveProbing(ctx context.Context, i int, g Gateway, sess session) (up bool, next session, err error) {
	if sess.Transport() != TransportTCP {
		up, err = c.serve(ctx, i, g, sess)
		return up, nil, err
	}
	pctx, cancel := context.WithCancel(ctx)
	found := make(chan session, 1)
	probed := make(chan struct{})
	go func() {
		defer close(probed)
		for {
			select {
			case <-pctx.Done():
				return
			case <-c.clock.After(c.cfg.ReprobeQUIC):
			}
			tc, err := clientTLS(c.cfg.Key, g.Key)
			if err != nil {
				return
			}
			q, err := c.dial(pctx, g, TransportQUIC, tc)
			if err != nil {
				c.log.Debug("QUIC still does not answer", "gateway", g.Addr, "err", err)
				continue
			}
			found <- q
			sess.Close()
			return
		}
	}()
	up, err = c.serve(ctx, i, g, sess)
	cancel()
	<-probed
	select {
	case next = <-found:
	default:
	}
	return up, next, err
}

// backoff is 250 ms doubled per failure up to limit, then drawn uniformly
// from its upper half so that many backends do not retry in step.
func backoff(failures int, limit time.Duration) time.Duration {
	d := 250 * time.Millisecond
	for range min(failures-1, 20) {
		d *= 2
		if d >= limit {
			d = limit
			break
		}
	}
	return d/2 + rand.N(d/2+1)
}

// connect opens a session by the preferred transport, then the other.
func (c *Client) connect(ctx context.Context, g Gateway, prefer Transport) (session, error) {
	order := []Transport{TransportQUIC, TransportTCP}
	if prefer == TransportTCP {
		order = []Transport{TransportTCP, TransportQUIC}
	}
	tc, err := clientTLS(c.cfg.Key, g.Key)
	if err != nil {
		return nil, err
	}
	var errs []error
	for _, t := range order {
		s, err := c.dial(ctx, g, t, tc)
		if err == nil {
			return s, nil
		}
		if errors.Is(err, ErrWrongGateway) {
			return nil, err // the other transport meets the same gateway
		}
		errs = append(errs, fmt.Errorf("%s: %w", t, err))
	}
	return nil, errors.Join(errs...)
}

func (c *Client) dial(ctx context.Context, g Gateway, t Transport, tc *tls.Config) (session, error) {
	dctx, cancel := context.WithTimeout(ctx, c.cfg.FallbackAfter)
	defer cancel()
	if t == TransportQUIC {
		qs, err := dialQUIC(dctx, g.Addr, tc, quicConfig(c.cfg.Heartbeat))
		if err != nil {
			return nil, unwrapPin(err)
		}
		return qs, nil
	}
	var d net.Dialer
	raw, err := d.DialContext(dctx, "tcp", g.Addr)
	if err != nil {
		return nil, err
	}
	conn := tls.Client(raw, tc)
	if err := conn.HandshakeContext(dctx); err != nil {
		raw.Close()
		return nil, unwrapPin(err)
	}
	ys, err := yamux.Client(conn, yamuxConfig(c.cfg.Heartbeat))
	if err != nil {
		conn.Close()
		return nil, err
	}
	return &yamuxSession{s: ys, tls: conn}, nil
}

// unwrapPin keeps ErrWrongGateway visible through TLS and QUIC wrapping,
// which carry the verifier's error only as text.
func unwrapPin(err error) error {
	if errors.Is(err, ErrWrongGateway) || !strings.Contains(err.Error(), ErrWrongGateway.Error()) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrWrongGateway, err)
}

// serve runs the hello, then the heartbeat and the stream loop, until the
// tunnel fails; up reports whether the hello succeeded. It returns once
// the goroutines it started (heartbeat, one per stream) have ended.
func (c *Client) serve(ctx context.Context, i int, g Gateway, sess session) (up bool, err error) {
	defer sess.Close()
	ctrl, served, err := c.greet(ctx, i, g, sess)
	if err != nil {
		return false, err
	}
	defer ctrl.Close()
	c.update(i, func(s *GatewayStatus) {
		s.Connected, s.Transport, s.Since, s.LastError = true, sess.Transport(), c.clock.Now(), ""
	})
	c.log.Info("tunnel up", "gateway", g.Addr, "transport", string(sess.Transport()), "names", len(served))
	sctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer func() {
		cancel()
		sess.Close() // ends the streams
		wg.Wait()
	}()
	hb := make(chan error, 1)
	wg.Go(func() { hb <- heartbeat(sctx, ctrl, c.cfg.Heartbeat, c.clock); sess.Close() })
	for {
		st, err := sess.Accept(sctx)
		if err != nil {
			select {
			case herr := <-hb:
				if herr != nil {
					return true, herr
				}
			default:
			}
			return true, fmt.Errorf("tunnel to %s ended: %w", g.Addr, err)
		}
		wg.Go(func() { c.relay(sctx, st, served) })
	}
}

// greet runs the client half of the hello exchange and returns the
// control stream and the routes the gateway accepted.
func (c *Client) greet(ctx context.Context, i int, g Gateway, sess session) (net.Conn, map[string]Route, error) {
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	ctrl, err := sess.Open(hctx)
	if err != nil {
		return nil, nil, err
	}
	ok := false
	defer func() {
		if !ok {
			ctrl.Close()
		}
	}()
	ctrl.SetDeadline(time.Now().Add(10 * time.Second))
	if err := writeFrame(ctrl, preamble{Version: Version}); err != nil {
		return nil, nil, err
	}
	var ch challenge
	if err := readFrame(ctrl, maxFrame, &ch); err != nil {
		return nil, nil, fmt.Errorf("read challenge: %w", err)
	}
	if ch.Version != Version {
		return nil, nil, fmt.Errorf("%w: gateway speaks version %d, this backend %d", ErrProtocol, ch.Version, Version)
	}
	cs := sess.TLS()
	binding, err := cs.ExportKeyingMaterial(exporterLabel, nil, 32)
	if err != nil {
		return nil, nil, err
	}
	body := helloBody{Version: Version, Key: c.cfg.Key.Public(), Gateway: g.Key, Nonce: ch.Nonce,
		Expires: c.clock.Now().Add(helloLifetime).Unix()}
	copy(body.Binding[:], binding)
	for _, r := range c.cfg.Names {
		body.Routes = append(body.Routes, RouteDecl{Name: r.Name, Mode: r.Mode})
	}
	sig, err := c.cfg.Key.Sign(helloTag, Version, body)
	if err != nil {
		return nil, nil, err
	}
	if err := writeFrame(ctrl, hello{Body: body, Sig: sig}); err != nil {
		return nil, nil, err
	}
	var w welcome
	if err := readFrame(ctrl, maxFrame, &w); err != nil {
		return nil, nil, fmt.Errorf("read welcome: %w", err)
	}
	served := map[string]Route{}
	refused := map[string]string{}
	for _, v := range w.Verdicts {
		r, mine := c.routes[v.Name]
		switch {
		case v.OK && mine:
			served[v.Name] = r
		case !v.OK:
			refused[v.Name] = v.Reason
			c.log.Error("gateway refused name", "gateway", g.Addr, "name", v.Name, "reason", v.Reason)
		}
	}
	c.update(i, func(s *GatewayStatus) { s.Refused = refused })
	if len(served) == 0 {
		return nil, nil, fmt.Errorf("%w at %s: %v", ErrRefused, g.Addr, refused)
	}
	ctrl.SetDeadline(time.Time{})
	ok = true
	return ctrl, served, nil
}
