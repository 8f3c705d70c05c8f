package tunnel

import (
	"net"
	"testing"
	"time"
)

// TestRxConnHoldsBriefly: a backlog that does not drain (a receiver that
// cannot keep up) holds the reader for at most rxHold, then reads go on;
// a small one does not hold it at all.
func TestRxConnHoldsBriefly(t *testing.T) {
	u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	r := newRxConn(u)
	r.read, r.bound = rxBacklog/2, rxBacklog/2
	start := time.Now()
	r.admit()
	if d := time.Since(start); d > rxHold/2 {
		t.Fatalf("a backlog under the mark held the reader %v", d)
	}
	r.read, r.bound, r.seen, r.moved = 2*rxBacklog, 2*rxBacklog, 0, time.Now()
	start = time.Now()
	r.admit()
	d := time.Since(start)
	if d < rxHold/2 || d > 20*rxHold {
		t.Fatalf("a backlog over the mark held the reader %v, want about %v", d, rxHold)
	}
	start = time.Now()
	r.admit() // still over: held in a row since the first, so no new wait
	if d := time.Since(start); d > rxHold/2 {
		t.Fatalf("held again for %v after rxHold in a row", d)
	}
	// Nothing processed for rxIdle: what was counted is stray, not queued.
	r.moved = time.Now().Add(-2 * rxIdle)
	if b := r.backlog(time.Now()); b != 0 {
		t.Fatalf("backlog %d after %v without progress, want 0", b, 2*rxIdle)
	}
}
