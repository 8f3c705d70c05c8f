package gateway

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/caddyserver/certmagic"
)

// Mode is how a name's backends want their traffic.
type Mode uint8

// Modes.
const (
	ModeHTTP        Mode = iota // the gateway terminates TLS and proxies HTTP
	ModePassthrough             // the gateway splices raw TLS bytes by SNI
)

// Backends is how the gateway reaches the backends of a name. The
// tunnel.Server implements it (see TunnelBackends); tests use an in-memory
// one. Both methods are safe for concurrent use.
type Backends interface {
	// Mode reports the mode a name's backends declared and whether at
	// least one backend for it is connected now.
	Mode(name string) (Mode, bool)
	// Dial opens a new stream to one live backend of name. client is the
	// public client's address (the tunnel client writes it as PROXY v2 in
	// passthrough mode). An error means no backend could take the stream
	// (the gateway answers 502 or closes); it is safe to retry.
	Dial(ctx context.Context, name string, client netip.AddrPort, mode Mode) (net.Conn, error)
}

// Limits bound what one client can hold. Zero fields take the defaults
// shown.
type Limits struct {
	HandshakeTimeout  time.Duration // ClientHello and TLS handshake: 10s
	ReadHeaderTimeout time.Duration // request headers: 10s
	IdleTimeout       time.Duration // keep-alive between requests: 120s
	MaxHeaderBytes    int           // request line and headers: 64 KiB
	MaxConns          int           // open client connections: 16384
	MaxConnsPerIP     int           // per client IPv4 address or IPv6 /64: 512
}

func (l *Limits) defaults() {
	setDefault(&l.HandshakeTimeout, 10*time.Second)
	setDefault(&l.ReadHeaderTimeout, 10*time.Second)
	setDefault(&l.IdleTimeout, 120*time.Second)
	setDefault(&l.MaxHeaderBytes, 64<<10)
	setDefault(&l.MaxConns, 16384)
	setDefault(&l.MaxConnsPerIP, 512)
}

func setDefault[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}

// Config configures a Gateway.
type Config struct {
	// Domain is the gateway's DNS suffix: it serves NAME.Domain.
	Domain string
	// Dir holds the local CA (ca.crt, ca.key) or certmagic's storage.
	Dir string
	// Backends reaches the backends of names.
	Backends Backends
	// Logger defaults to slog.Default().
	Logger *slog.Logger
	// ACME, when set, gets certificates from an ACME CA instead of the
	// local CA.
	ACME *ACMEConfig
	// Limits on clients.
	Limits Limits
	// Now is the clock; time.Now by default.
	Now func() time.Time
	// Metrics to record into; a new set when nil. Create it first with
	// NewMetrics to hand it to the tunnel server as its observer too.
	Metrics *Metrics
}

// Gateway serves HTTPS for NAME.Domain on listeners given to Serve.
type Gateway struct {
	domain     string
	backends   Backends
	log        *slog.Logger
	limits     Limits
	metrics    *Metrics
	limiter    *connLimiter
	ca         *localCA          // nil with ACME
	magic      *certmagic.Config // nil without ACME
	magicCache *certmagic.Cache
	tlsConf    *tls.Config
	httpSrv    *http.Server
	httpLn     *chanListener
	proxy      http.Handler

	ctx    context.Context
	cancel context.CancelFunc

	mu        sync.Mutex
	closed    atomic.Bool // set under mu; read without it on the request path
	listeners map[net.Listener]struct{}
	raw       map[net.Conn]struct{} // connections not (yet) owned by httpSrv
	hijacked  map[net.Conn]struct{} // upgraded (WebSocket) connections
	h1        map[*h1conn]struct{}  // client connections on the HTTP/1.1 path
	pool      *streamPool           // idle backend streams of the HTTP/1.1 path
	wg        sync.WaitGroup        // handleConn goroutines
	served    chan struct{}
}

// New checks cfg, loads or creates the local CA (or sets up ACME), and
// returns a gateway ready to Serve.
func New(cfg Config) (*Gateway, error) {
	domain := strings.TrimSuffix(strings.ToLower(cfg.Domain), ".")
	if err := checkDomain(domain); err != nil {
		return nil, err
	}
	if cfg.Dir == "" {
		return nil, fmt.Errorf("%w: Dir is empty: the gateway keeps its CA or ACME state there", ErrConfig)
	}
	if cfg.Backends == nil {
		return nil, fmt.Errorf("%w: Backends is nil", ErrConfig)
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	cfg.Limits.defaults()
	if cfg.Metrics == nil {
		cfg.Metrics = NewMetrics()
	}
	ctx, cancel := context.WithCancel(context.Background())
	g := &Gateway{
		domain: domain, backends: cfg.Backends, log: cfg.Logger, limits: cfg.Limits,
		metrics: cfg.Metrics, limiter: newConnLimiter(cfg.Limits.MaxConns, cfg.Limits.MaxConnsPerIP),
		httpLn: newChanListener(), ctx: ctx, cancel: cancel,
		listeners: make(map[net.Listener]struct{}), raw: make(map[net.Conn]struct{}), hijacked: make(map[net.Conn]struct{}),
		h1: make(map[*h1conn]struct{}), pool: newStreamPool(), served: make(chan struct{}),
	}
	g.tlsConf = &tls.Config{MinVersion: tls.VersionTLS12, NextProtos: []string{"h2", "http/1.1"}}
	if cfg.ACME != nil {
		magic, cache, err := newMagic(*cfg.ACME, cfg.Dir, domain, g.acmeDecision, cfg.Logger)
		if err != nil {
			cancel()
			return nil, err
		}
		g.magic, g.magicCache = magic, cache
		g.tlsConf.GetCertificate = magic.GetCertificate
		g.tlsConf.NextProtos = append(g.tlsConf.NextProtos, acmeALPN)
	} else {
		ca, err := loadOrCreateCA(cfg.Dir, domain, cfg.Now)
		if err != nil {
			cancel()
			return nil, err
		}
		g.ca = ca
		g.tlsConf.GetCertificate = ca.getCertificate
	}
	g.proxy = newProxy(g)
	g.httpSrv = &http.Server{
		Handler:           g,
		TLSConfig:         g.tlsConf, // makes Serve offer h2 on our *tls.Conns
		ReadHeaderTimeout: g.limits.ReadHeaderTimeout,
		IdleTimeout:       g.limits.IdleTimeout,
		MaxHeaderBytes:    g.limits.MaxHeaderBytes,
		ErrorLog:          slog.NewLogLogger(cfg.Logger.Handler(), slog.LevelDebug),
	}
	go func() {
		defer close(g.served)
		_ = g.httpSrv.Serve(g.httpLn)
	}()
	go func() { // idle backend streams of names gone quiet
		t := time.NewTicker(streamIdleTimeout / 3)
		defer t.Stop()
		for {
			select {
			case <-g.ctx.Done():
				return
			case now := <-t.C:
				g.pool.prune(now)
			}
		}
	}()
	return g, nil
}

func checkDomain(d string) error {
	if d == "" || len(d) > 253 || strings.HasPrefix(d, ".") || strings.Contains(d, "..") {
		return fmt.Errorf("%w: Domain %q is not a DNS name like grid.example.org", ErrConfig, d)
	}
	for _, label := range strings.Split(d, ".") {
		if !validLabel(label) {
			return fmt.Errorf("%w: Domain %q: label %q is not letters, digits and inner hyphens", ErrConfig, d, label)
		}
	}
	return nil
}

func validLabel(s string) bool {
	if s == "" || len(s) > 63 || s[0] == '-' || s[len(s)-1] == '-' {
		return false
	}
	for _, c := range []byte(s) {
		if !('a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-') {
			return false
		}
	}
	return true
}

// nameOf maps a host (SNI or Host header, without port) to the name it
// addresses: "" for the domain itself, ok=false for hosts outside it.
func (g *Gateway) nameOf(host string) (string, bool) {
	host = strings.TrimSuffix(strings.ToLower(host), ".")
	if host == g.domain {
		return "", true
	}
	label, found := strings.CutSuffix(host, "."+g.domain)
	if !found || !validLabel(label) {
		return "", false
	}
	return label, true
}

// CACertPEM is the local CA's certificate, for clients to trust; nil with
// ACME.
func (g *Gateway) CACertPEM() []byte {
	if g.ca == nil {
		return nil
	}
	return slices.Clone(g.ca.certPEM)
}

// Metrics are the gateway's Prometheus series; serve Metrics().Handler()
// on a loopback address.
func (g *Gateway) Metrics() *Metrics { return g.metrics }

// Serve accepts client connections on ln until Shutdown or Close, and
// returns ErrClosed then. It may run on several listeners at once.
func (g *Gateway) Serve(ln net.Listener) error {
	g.mu.Lock()
	if g.closed.Load() {
		g.mu.Unlock()
		return ErrClosed
	}
	g.listeners[ln] = struct{}{}
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.listeners, ln)
		g.mu.Unlock()
	}()
	var backoff time.Duration
	for {
		c, err := ln.Accept()
		if err != nil {
			if g.isClosed() {
				return ErrClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() || errors.Is(err, syscall.EMFILE) || errors.Is(err, syscall.ENFILE) {
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				g.log.Warn("accept failed; retrying", "err", err, "in", backoff)
				time.Sleep(backoff)
				continue
			}
			return fmt.Errorf("accept on %s: %w", ln.Addr(), err)
		}
		backoff = 0
		g.accept(c)
	}
}

func (g *Gateway) isClosed() bool { return g.closed.Load() }

// accept applies the connection limits and starts routing c.
func (g *Gateway) accept(c net.Conn) {
	client := remoteAddrPort(c)
	release, reason := g.limiter.acquire(client.Addr())
	if reason != "" {
		g.metrics.rejected.WithLabelValues(reason).Inc()
		c.Close()
		return
	}
	g.metrics.openConns.Inc()
	lc := &limitedConn{Conn: c, release: func() { release(); g.metrics.openConns.Dec() }}
	g.mu.Lock()
	if g.closed.Load() {
		g.mu.Unlock()
		lc.Close()
		return
	}
	g.raw[lc] = struct{}{}
	g.wg.Add(1)
	g.mu.Unlock()
	go func() {
		defer g.wg.Done()
		g.handleConn(lc, client)
		g.mu.Lock()
		delete(g.raw, lc)
		g.mu.Unlock()
	}()
}

func remoteAddrPort(c net.Conn) netip.AddrPort {
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		return a.AddrPort()
	}
	ap, _ := netip.ParseAddrPort(c.RemoteAddr().String())
	return ap
}

const acmeALPN = "acme-tls/1"

// handleConn reads the ClientHello and either splices the connection to
// a passthrough backend or terminates TLS and hands it to the HTTP server.
func (g *Gateway) handleConn(c net.Conn, client netip.AddrPort) {
	c.SetDeadline(time.Now().Add(g.limits.HandshakeTimeout))
	hello, pre, err := peekClientHello(c)
	if err != nil {
		g.metrics.rejected.WithLabelValues("not-tls").Inc()
		c.Close()
		return
	}
	rc := &replayConn{Conn: c, pre: pre}
	name, ok := g.nameOf(hello.ServerName)
	if !ok {
		g.metrics.rejected.WithLabelValues("unknown-sni").Inc()
		c.Close()
		return
	}
	challenge := g.magic != nil && slices.Contains(hello.ALPN, acmeALPN)
	if mode, live := g.backends.Mode(name); name != "" && live && mode == ModePassthrough && !challenge {
		c.SetDeadline(time.Time{})
		g.passthrough(rc, name, client)
		return
	}
	tc := tls.Server(rc, g.tlsConf)
	if err := tc.HandshakeContext(g.ctx); err != nil {
		g.metrics.rejected.WithLabelValues("handshake").Inc()
		g.log.Debug("TLS handshake failed", "client", client, "sni", hello.ServerName, "err", err)
		c.Close()
		return
	}
	if tc.ConnectionState().NegotiatedProtocol == acmeALPN {
		c.Close() // the challenge is answered by the handshake itself
		return
	}
	c.SetDeadline(time.Time{})
	if tc.ConnectionState().NegotiatedProtocol != "h2" {
		g.serveH1(tc, client)
		return
	}
	if !g.httpLn.push(tc) {
		c.Close()
	}
}

// Shutdown stops accepting, lets requests and passthrough connections in
// flight finish until ctx ends, then closes what is left.
func (g *Gateway) Shutdown(ctx context.Context) error {
	g.stopAccepting()
	g.mu.Lock()
	for c := range g.h1 {
		c.kickIdle() // busy ones stop after their response
	}
	g.mu.Unlock()
	err := g.httpSrv.Shutdown(ctx)
	waited := make(chan struct{})
	go func() { g.wg.Wait(); close(waited) }()
	select {
	case <-waited:
	case <-ctx.Done():
		err = errors.Join(err, ctx.Err())
	}
	return errors.Join(err, g.Close())
}

// Close stops the gateway at once, closing every connection.
func (g *Gateway) Close() error {
	g.stopAccepting()
	g.cancel()
	err := g.httpSrv.Close()
	g.mu.Lock()
	for c := range g.raw {
		c.Close()
	}
	hijacked := make([]net.Conn, 0, len(g.hijacked))
	for c := range g.hijacked {
		hijacked = append(hijacked, c)
	}
	g.mu.Unlock()
	for _, c := range hijacked { // their Close takes g.mu
		c.Close()
	}
	g.pool.closeAll()
	g.wg.Wait()
	<-g.served
	if g.magic != nil {
		g.magicCache.Stop()
	}
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return err
}

// trackHijacked keeps an upgraded connection, which the HTTP server no
// longer tracks, so that Close can end it.
func (g *Gateway) trackHijacked(c net.Conn) net.Conn {
	hc := &hijackedConn{Conn: c, g: g}
	g.mu.Lock()
	g.hijacked[hc] = struct{}{}
	g.mu.Unlock()
	return hc
}

type hijackedConn struct {
	net.Conn
	g    *Gateway
	once sync.Once
}

func (c *hijackedConn) Close() error {
	c.once.Do(func() {
		c.g.mu.Lock()
		delete(c.g.hijacked, c)
		c.g.mu.Unlock()
	})
	return c.Conn.Close()
}

func (g *Gateway) stopAccepting() {
	g.mu.Lock()
	g.closed.Store(true)
	for ln := range g.listeners {
		ln.Close()
	}
	g.mu.Unlock()
	g.httpLn.Close()
}

// chanListener hands connections the gateway already terminated to the
// HTTP server.
type chanListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newChanListener() *chanListener {
	return &chanListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *chanListener) push(c net.Conn) bool {
	select {
	case l.ch <- c:
		return true
	case <-l.done:
		return false
	}
}

func (l *chanListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *chanListener) Close() error {
	l.once.Do(func() { close(l.done) })
	return nil
}

func (l *chanListener) Addr() net.Addr { return &net.TCPAddr{} }
