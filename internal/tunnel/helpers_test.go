package tunnel

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
)

func newKey(t testing.TB) identity.PrivateKey {
	t.Helper()
	k, err := identity.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// holders authorizes a name for the keys listed; the in-memory stand-in
// for the ledger's name contracts.
type holders struct {
	mu sync.Mutex
	m  map[string][]identity.PublicKey
}

func (h *holders) Authorize(_ context.Context, name string, key identity.PublicKey) error {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, k := range h.m[name] {
		if k.Equal(key) {
			return nil
		}
	}
	return fmt.Errorf("%w: name %s is not held by key %s", ErrNotAuthorized, name, key)
}

func testLogger(t testing.TB) *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

type gateway struct {
	srv  *Server
	key  identity.PrivateKey
	addr string // same port for UDP and TCP
}

// startGateway listens on one loopback port for both transports (QUIC
// only when quic is set) and serves until the test ends.
func startGateway(t testing.TB, auth Authorizer, quicOn bool, hb time.Duration) *gateway {
	t.Helper()
	key := newKey(t)
	// A long stream timeout: under -race on a busy machine 200 streams
	// may wait seconds for their turn.
	srv, err := NewServer(ServerConfig{Key: key, Authorizer: auth, Logger: testLogger(t), Heartbeat: hb, StreamTimeout: 30 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	return serveOn(t, srv, key, "127.0.0.1", quicOn)
}

func serveOn(t testing.TB, srv *Server, key identity.PrivateKey, host string, quicOn bool) *gateway {
	t.Helper()
	var l net.Listener
	var pc net.PacketConn
	for range 20 {
		var err error
		if l, err = net.Listen("tcp", net.JoinHostPort(host, "0")); err != nil {
			t.Fatal(err)
		}
		if pc, err = net.ListenPacket("udp", l.Addr().String()); err == nil {
			break
		}
		l.Close()
		l = nil
	}
	if l == nil {
		t.Fatal("no port free for both TCP and UDP")
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); srv.ServeTLS(ctx, l) }()
	if quicOn {
		wg.Add(1)
		go func() { defer wg.Done(); srv.ServeQUIC(ctx, pc) }()
	} else {
		pc.Close() // nothing answers UDP: QUIC times out
	}
	t.Cleanup(func() {
		cancel()
		srv.Close()
		pc.Close()
		wg.Wait()
	})
	return &gateway{srv: srv, key: key, addr: l.Addr().String()}
}

// echoTarget answers each connection with "id\n", then echoes.
func echoTarget(t testing.TB, id string) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.WriteString(c, id+"\n")
				io.Copy(c, c)
			}()
		}
	}()
	return l.Addr().String()
}

// runClient runs a client until the test ends (or stop is called).
func runClient(t testing.TB, cfg ClientConfig) (*Client, func()) {
	t.Helper()
	if cfg.Logger == nil {
		cfg.Logger = testLogger(t)
	}
	c, err := NewClient(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { defer close(done); c.Run(ctx) }()
	stop := func() { cancel(); <-done }
	t.Cleanup(stop)
	return c, stop
}

func waitFor(t testing.TB, what string, d time.Duration, f func() bool) {
	t.Helper()
	end := time.Now().Add(d)
	for !f() {
		if time.Now().After(end) {
			t.Fatalf("timed out after %s waiting for %s", d, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func connected(c *Client, tr Transport) func() bool {
	return func() bool {
		for _, s := range c.Status() {
			if !s.Connected || (tr != "" && s.Transport != tr) {
				return false
			}
		}
		return true
	}
}

// roundTrip dials name through srv, reads the backend's id line, and
// checks that msg comes back.
func roundTrip(t testing.TB, srv *Server, name, msg string) (string, error) {
	t.Helper()
	return roundTripWithin(srv, name, msg, 5*time.Second)
}

func roundTripWithin(srv *Server, name, msg string, limit time.Duration) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	c, err := srv.Dial(ctx, name, StreamMeta{})
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(limit))
	r := bufio.NewReader(c)
	id, err := r.ReadString('\n')
	if err != nil {
		return "", fmt.Errorf("read id: %w", err)
	}
	if _, err := io.WriteString(c, msg); err != nil {
		return "", err
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(r, got); err != nil {
		return "", fmt.Errorf("read echo: %w", err)
	}
	if string(got) != msg {
		return "", fmt.Errorf("echo %q, want %q", got, msg)
	}
	return strings.TrimSpace(id), nil
}
