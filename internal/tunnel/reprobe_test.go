package tunnel

import (
	"context"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
)

// TestReprobeMovesBackToQUIC: a tunnel that fell back to TLS over TCP
// because UDP went unanswered tries QUIC again each ReprobeQUIC on its
// clock, stays on TCP while QUIC does not answer, and moves to QUIC once
// it does, serving on.
func TestReprobeMovesBackToQUIC(t *testing.T) {
	t.Parallel()
	const reprobe = 5 * time.Minute
	clk := newFakeClock()
	backend, key := newKey(t), newKey(t)
	srv, err := NewServer(ServerConfig{Key: key, Logger: testLogger(t), Clock: clk, Heartbeat: 24 * time.Hour,
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
	t.Cleanup(func() { cancel(); srv.Close(); pc.Close(); wg.Wait() })
	wg.Go(func() { srv.ServeTLS(ctx, l) })
	// UDP is bound but only the test reads it: QUIC handshakes go
	// unanswered, and each attempt shows as datagrams.
	var datagrams atomic.Int64
	reading := make(chan struct{})
	go func() {
		defer close(reading)
		buf := make([]byte, 2048)
		for {
			if _, _, err := pc.ReadFrom(buf); err != nil {
				return
			}
			datagrams.Add(1)
		}
	}()
	c, _ := runClient(t, ClientConfig{
		Key: backend, Names: []Route{{Name: "web", Target: echoTarget(t, "b1")}},
		Gateways:      []Gateway{{Addr: l.Addr().String(), Key: key.Public()}},
		FallbackAfter: 300 * time.Millisecond, ReprobeQUIC: reprobe, Heartbeat: 24 * time.Hour, Clock: clk,
	})
	waitFor(t, "tunnel over TLS+TCP", 10*time.Second, connected(c, TransportTCP))
	clk.waitPending(t, reprobe)
	before := datagrams.Load()
	if before == 0 {
		t.Fatal("the first connect tried no QUIC")
	}
	clk.Advance(reprobe)
	waitFor(t, "a QUIC probe", 10*time.Second, func() bool { return datagrams.Load() > before })
	clk.waitPending(t, reprobe) // that probe failed; the next is armed
	if st := c.Status()[0]; st.Transport != TransportTCP || !st.Connected || st.Reconnects != 0 {
		t.Fatalf("after a failed probe: %+v", st)
	}
	if _, err := roundTrip(t, srv, "web", "x"); err != nil {
		t.Fatal(err)
	}

	pc.SetReadDeadline(past) // the test stops reading; the gateway serves QUIC
	<-reading
	pc.SetReadDeadline(time.Time{})
	wg.Go(func() { srv.ServeQUIC(ctx, pc) })
	if st := c.Status()[0]; st.Transport != TransportTCP {
		t.Fatalf("moved to QUIC before the clock reached the next probe: %+v", st)
	}
	clk.Advance(reprobe)
	waitFor(t, "tunnel over QUIC", 10*time.Second, connected(c, TransportQUIC))
	if id, err := roundTrip(t, srv, "web", "after the move"); err != nil || id != "b1" {
		t.Fatalf("round trip after the move: %q %v", id, err)
	}
}
