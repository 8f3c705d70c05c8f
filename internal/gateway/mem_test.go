package gateway

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"os"
	"sync"
	"testing"
	"time"
)

// memBackends is the in-memory Backends seam: each name maps to a
// listener fed with the far ends of net.Pipe connections.
type memBackends struct {
	mu    sync.Mutex
	names map[string]*memBackend
}

type memBackend struct {
	mode    Mode
	ln      *pipeListener
	dialErr error
	clients []netip.AddrPort
	dead    int // this many next dials get a stream that dies at once
}

var errNoBackend = errors.New("mem: no backend")

func newMemBackends() *memBackends { return &memBackends{names: make(map[string]*memBackend)} }

func (m *memBackends) Mode(name string) (Mode, bool) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.names[name]
	if !ok {
		return 0, false
	}
	return b.mode, true
}

func (m *memBackends) Dial(ctx context.Context, name string, client netip.AddrPort, mode Mode) (net.Conn, error) {
	m.mu.Lock()
	b, ok := m.names[name]
	if ok {
		b.clients = append(b.clients, client)
	}
	m.mu.Unlock()
	if !ok {
		return nil, errNoBackend
	}
	if b.dialErr != nil {
		return nil, b.dialErr
	}
	if mode != b.mode {
		return nil, errors.New("mem: mode mismatch")
	}
	m.mu.Lock()
	dead := b.dead > 0
	if dead {
		b.dead--
	}
	m.mu.Unlock()
	if dead {
		a, far := net.Pipe()
		go func() { far.Read(make([]byte, 1)); far.Close() }() // dies once the request starts
		return a, nil
	}
	return b.ln.dial(ctx)
}

func (m *memBackends) lastClient(name string) netip.AddrPort {
	m.mu.Lock()
	defer m.mu.Unlock()
	c := m.names[name].clients
	if len(c) == 0 {
		return netip.AddrPort{}
	}
	return c[len(c)-1]
}

// addHTTP serves h for name in terminate mode.
func (m *memBackends) addHTTP(t *testing.T, name string, h http.Handler) {
	m.addServer(t, name, &http.Server{Handler: h})
}

// addServer serves srv for name in terminate mode.
func (m *memBackends) addServer(t *testing.T, name string, srv *http.Server) {
	ln := newPipeListener()
	go srv.Serve(ln)
	t.Cleanup(func() { srv.Close() })
	m.mu.Lock()
	m.names[name] = &memBackend{mode: ModeHTTP, ln: ln}
	m.mu.Unlock()
}

// addTLS serves h over TLS with cert for name in passthrough mode.
func (m *memBackends) addTLS(t *testing.T, name string, cert tls.Certificate, h http.Handler) {
	ln := newPipeListener()
	srv := &http.Server{Handler: h}
	go srv.Serve(tls.NewListener(ln, &tls.Config{Certificates: []tls.Certificate{cert}}))
	t.Cleanup(func() { srv.Close() })
	m.mu.Lock()
	m.names[name] = &memBackend{mode: ModePassthrough, ln: ln}
	m.mu.Unlock()
}

func (m *memBackends) addBroken(name string) {
	m.mu.Lock()
	m.names[name] = &memBackend{mode: ModeHTTP, dialErr: errNoBackend}
	m.mu.Unlock()
}

type pipeListener struct {
	ch   chan net.Conn
	done chan struct{}
	once sync.Once
}

func newPipeListener() *pipeListener {
	return &pipeListener{ch: make(chan net.Conn), done: make(chan struct{})}
}

func (l *pipeListener) dial(ctx context.Context) (net.Conn, error) {
	a, b := net.Pipe()
	select {
	case l.ch <- b:
		return a, nil
	case <-l.done:
		return nil, net.ErrClosed
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (l *pipeListener) Accept() (net.Conn, error) {
	select {
	case c := <-l.ch:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

func (l *pipeListener) Close() error   { l.once.Do(func() { close(l.done) }); return nil }
func (l *pipeListener) Addr() net.Addr { return &net.TCPAddr{} }

const testDomain = "grid.test"

// startGateway runs a gateway with the local CA on a loopback listener.
func startGateway(t *testing.T, b Backends, lim Limits) (*Gateway, string) {
	t.Helper()
	g, err := New(Config{Domain: testDomain, Dir: t.TempDir(), Backends: b, Limits: lim, Logger: testLogger()})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go g.Serve(ln)
	t.Cleanup(func() { g.Close() })
	return g, ln.Addr().String()
}

func testLogger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// clientFor returns an HTTP client that resolves every name to addr and
// trusts the gateway's CA; h2 selects HTTP/2.
func clientFor(t *testing.T, g *Gateway, addr string, h2 bool) *http.Client {
	t.Helper()
	pool := x509.NewCertPool()
	if !pool.AppendCertsFromPEM(g.CACertPEM()) {
		t.Fatal("CA PEM does not parse")
	}
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
		ForceAttemptHTTP2: h2,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func readAll(t *testing.T, r io.Reader) string {
	t.Helper()
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}
