package tunnel

import (
	"context"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
)

// TestReprobeMovesBackToQUIC: a tunnel that fell back to TLS over TCP
// because UDP went unanswered moves to QUIC once QUIC answers, and keeps
// serving.
func TestReprobeMovesBackToQUIC(t *testing.T) {
	t.Parallel()
	backend, key := newKey(t), newKey(t)
	srv, err := NewServer(ServerConfig{Key: key, Logger: testLogger(t),
		Authorizer: &holders{m: map[string][]identity.PublicKey{"web": {backend.Public()}}}})
	if err != nil {
		t.Fatal(err)
	}
	var l net.Listener
	var pc net.PacketConn
	for range 20 {
		if l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if pc, err = net.ListenPacket("udp", l.Addr().String()); err == nil {
			break
		}
		l.Close()
	}
	if pc == nil {
		t.Fatal("no port free for both TCP and UDP")
	}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); pc.Close(); wg.Wait() })
	wg.Add(1)
	go func() { defer wg.Done(); srv.ServeTLS(ctx, l) }()
	// UDP is bound but nobody reads it yet: QUIC handshakes time out.
	c, _ := runClient(t, ClientConfig{
		Key: backend, Names: []Route{{Name: "web", Target: echoTarget(t, "b1")}},
		Gateways:      []Gateway{{Addr: l.Addr().String(), Key: key.Public()}},
		FallbackAfter: 300 * time.Millisecond, ReprobeQUIC: 200 * time.Millisecond,
	})
	waitFor(t, "tunnel over TLS+TCP", 10*time.Second, connected(c, TransportTCP))
	time.Sleep(time.Second) // a few probes fail meanwhile
	if st := c.Status()[0]; st.Transport != TransportTCP || !st.Connected {
		t.Fatalf("while QUIC is blocked: %+v", st)
	}
	if _, err := roundTrip(t, srv, "web", "x"); err != nil {
		t.Fatal(err)
	}
	wg.Add(1)
	go func() { defer wg.Done(); srv.ServeQUIC(ctx, pc) }()
	waitFor(t, "tunnel over QUIC", 10*time.Second, connected(c, TransportQUIC))
	if id, err := roundTrip(t, srv, "web", "after the move"); err != nil || id != "b1" {
		t.Fatalf("round trip after the move: %q %v", id, err)
	}
}
