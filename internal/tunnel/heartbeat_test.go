package tunnel

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
)

const hbInterval = 10 * time.Second

// TestBackendHeartbeat: the backend pings every interval on its clock,
// keeps going while pongs come back, and gives up once three intervals
// passed without one.
func TestBackendHeartbeat(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	ours, gw := net.Pipe()
	defer gw.Close()
	errc := make(chan error, 1)
	go func() { errc <- heartbeat(context.Background(), ours, hbInterval, clk) }()
	readPing := func(want uint64) {
		t.Helper()
		gw.SetReadDeadline(time.Now().Add(10 * time.Second))
		var f ctrlFrame
		if err := readFrame(gw, maxFrame, &f); err != nil || f.Type != framePing || f.Seq != want {
			t.Fatalf("ping %d: got %+v, %v", want, f, err)
		}
	}
	// pong answers ping seq and then sends the first bytes of the next
	// pong: that write returns only once the heartbeat has read the whole
	// answer and counted it, so the clock moves after it did. The next
	// pong sends the rest of that frame first.
	frame := func(seq uint64) []byte {
		var b bytes.Buffer
		if err := writeFrame(&b, ctrlFrame{Type: framePong, Seq: seq}); err != nil {
			t.Fatal(err)
		}
		return b.Bytes()
	}
	var rest []byte // of the pong begun last
	pong := func(seq uint64) {
		t.Helper()
		if rest == nil {
			rest = frame(seq)
		}
		next := frame(seq + 1)
		if _, err := gw.Write(rest); err != nil {
			t.Fatal(err)
		}
		if _, err := gw.Write(next[:4]); err != nil {
			t.Fatal(err)
		}
		rest = next[4:]
	}
	// Ten intervals with every ping answered: one ping per interval, and
	// the heartbeat keeps going.
	for seq := uint64(1); seq <= 10; seq++ {
		readPing(seq)
		pong(seq)
		clk.waitPending(t, hbInterval)
		clk.Advance(hbInterval)
	}
	// Unanswered from here (the last pong came at 90 s): the checks at
	// 100 s and 110 s pass and ping again, the one at 120 s ends it.
	for seq := uint64(11); seq <= 12; seq++ {
		readPing(seq)
		select {
		case err := <-errc:
			t.Fatalf("gave up %d intervals after the last pong: %v", seq-10, err)
		default:
		}
		clk.waitPending(t, hbInterval)
		clk.Advance(hbInterval)
	}
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "no pong in 30s") {
			t.Fatalf("heartbeat ended with %v, want no pong in 30s", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("heartbeat still going three intervals after the last pong")
	}
}

// TestGatewayAnswersPings: the gateway answers each ping and drops a
// tunnel whose backend has not pinged for three intervals on its clock.
func TestGatewayAnswersPings(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	ours, backend := net.Pipe()
	defer backend.Close()
	errc := make(chan error, 1)
	go func() { errc <- answerPings(ours, hbInterval, clk) }()
	backend.SetDeadline(time.Now().Add(20 * time.Second))
	for seq := uint64(1); seq <= 10; seq++ {
		clk.waitPending(t, hbInterval)
		if err := writeFrame(backend, ctrlFrame{Type: framePing, Seq: seq}); err != nil {
			t.Fatal(err)
		}
		var f ctrlFrame
		if err := readFrame(backend, maxFrame, &f); err != nil || f.Type != framePong || f.Seq != seq {
			t.Fatalf("answer to ping %d: %+v, %v", seq, f, err)
		}
		clk.Advance(hbInterval)
	}
	// The backend falls silent after its ping at 90 s: the checks at
	// 100 s and 110 s pass, the one at 120 s ends the tunnel.
	for i := 1; i <= 2; i++ {
		clk.waitPending(t, hbInterval) // the check is done, the next one armed
		select {
		case err := <-errc:
			t.Fatalf("dropped %d intervals after the last ping: %v", i, err)
		default:
		}
		clk.Advance(hbInterval)
	}
	select {
	case err := <-errc:
		if err == nil || !strings.Contains(err.Error(), "no ping in 30s") {
			t.Fatalf("answerPings ended with %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("tunnel kept three intervals after the last ping")
	}
}

// TestGatewayDropsSilentBackend: a backend that greets and then never
// pings loses its names once three heartbeat intervals passed on the
// gateway's clock, not before.
func TestGatewayDropsSilentBackend(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	backend, key := newKey(t), newKey(t)
	srv, err := NewServer(ServerConfig{Key: key, Logger: testLogger(t), Clock: clk, Heartbeat: hbInterval, Recheck: time.Hour,
		Authorizer: &holders{m: map[string][]identity.PublicKey{"web": {backend.Public()}}}})
	if err != nil {
		t.Fatal(err)
	}
	gw := serveOn(t, srv, key, "127.0.0.1", false)
	w, _ := rawHello(t, gw, backend, func(*hello, identity.PrivateKey) {})
	if len(w.Verdicts) != 1 || !w.Verdicts[0].OK {
		t.Fatalf("verdicts %+v", w.Verdicts)
	}
	waitFor(t, "registration", 5*time.Second, func() bool { _, ok := srv.Mode("web"); return ok })
	for range 2 {
		clk.waitPending(t, hbInterval)
		clk.Advance(hbInterval)
	}
	clk.waitPending(t, hbInterval) // the second interval was checked
	if _, ok := srv.Mode("web"); !ok {
		t.Fatal("dropped after two silent intervals")
	}
	clk.Advance(hbInterval)
	waitFor(t, "the silent tunnel dropped", 10*time.Second, func() bool { _, ok := srv.Mode("web"); return !ok })
}
