package overlay

import (
	"context"
	"encoding/binary"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// waitPQ waits until both nodes hold the same key other than not and
// their sessions use it, calling step between polls.
func waitPQ(t testing.TB, nodes [2]*memNode, not Key, within time.Duration, step func()) Key {
	t.Helper()
	a, b := nodes[0], nodes[1]
	var k Key
	ok := waitFor(within, func() {
		if step != nil {
			step()
		}
		a.ov.psk.check()
		b.ov.psk.check()
	}, func() bool {
		k = agreed(nodes)
		return k != (Key{}) && k != not && a.ov.PostQuantum(b.ov.PublicKey()) && b.ov.PostQuantum(a.ov.PublicKey())
	})
	if !ok {
		t.Fatalf("no new post-quantum key agreed within %s", within)
	}
	return k
}

// stream sends numbered datagrams from a to b every few milliseconds
// until stop is called, which returns how many were sent and received.
func stream(t *testing.T, a, b *memNode) (stop func() (sent, got int)) {
	src, dst := netip.AddrPortFrom(a.ov.Address(), 9), netip.AddrPortFrom(b.ov.Address(), 9)
	quit := make(chan struct{})
	var wg sync.WaitGroup
	sent := 0
	wg.Go(func() {
		for {
			select {
			case <-quit:
				return
			case <-time.After(3 * time.Millisecond):
			}
			var msg [8]byte
			binary.BigEndian.PutUint64(msg[:], uint64(sent))
			select {
			case a.tun.Outbound <- udp6(src, dst, msg[:]):
				sent++
			case <-quit:
				return
			}
		}
	})
	seen := map[uint64]bool{}
	count := func(d time.Duration) {
		deadline := time.After(d)
		for {
			select {
			case p := <-b.recv:
				if s, _, pl, ok := parseUDP6(p); ok && s == src && len(pl) == 8 {
					seen[binary.BigEndian.Uint64(pl)] = true
				}
			case <-deadline:
				return
			}
		}
	}
	return func() (int, int) {
		close(quit)
		wg.Wait()
		count(time.Second)
		return sent, len(seen)
	}
}

// Pre-shared keys are renewed every Rotate (on the injected clock), equal
// on both sides, and a stream of datagrams loses nothing across renewals.
func TestPSKRotation(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	step := func() { clk.Advance(10 * time.Millisecond) }
	nodes := newMemPair(t, func(_ int, c *Config) { c.Clock, c.Rotate, c.Recover = clk, time.Minute, time.Hour })
	a, b := nodes[0], nodes[1]
	key := waitPQ(t, nodes, Key{}, 10*time.Second, step)
	stop := stream(t, a, b)
	keys := map[Key]bool{key: true}
	for range 3 {
		clk.Advance(70 * time.Second) // Rotate + 10 % is the latest renewal
		key = waitPQ(t, nodes, key, 10*time.Second, nil)
		keys[key] = true
		time.Sleep(50 * time.Millisecond)
	}
	sent, got := stop()
	if len(keys) != 4 {
		t.Fatalf("saw %d distinct keys, want 4", len(keys))
	}
	if ra, rb := a.ov.Rotations(b.ov.PublicKey()), b.ov.Rotations(a.ov.PublicKey()); ra != 4 || rb != 4 {
		t.Fatalf("rotations: %d and %d, want 4 each", ra, rb)
	}
	if sent < 20 || got != sent {
		t.Fatalf("stream across rotations: %d datagrams received of %d sent", got, sent)
	}
}

// The exchanged key is what WireGuard's handshakes use: a node that lost
// it (peer re-added) cannot complete a handshake with a node that has it,
// and can again once it holds the same key.
func TestPSKGuardsHandshakes(t *testing.T) {
	t.Parallel()
	nodes := newMemPair(t, nil)
	psk := waitPQ(t, nodes, Key{}, 10*time.Second, nil)
	// The responder forgets the peer and gets it back without the key; the
	// initiator will not renew it for an hour.
	ini, resp := roles(nodes)
	ctx := context.Background()
	if err := resp.ov.SetPeers(ctx, nil); err != nil {
		t.Fatal(err)
	}
	if err := resp.ov.SetPeers(ctx, []Peer{ini.peer()}); err != nil {
		t.Fatal(err)
	}
	if reaches(t, resp, ini, 2*time.Second) {
		t.Fatal("a handshake without the pre-shared key succeeded")
	}
	if err := resp.ov.setPSK(ini.ov.PublicKey(), psk); err != nil {
		t.Fatal(err)
	}
	if !reaches(t, resp, ini, 10*time.Second) {
		t.Fatal("no handshake with the same key")
	}
}

// A node that lost the pre-shared key (restarted: here it forgets and
// re-adds the peer) is locked out of handshakes, and the exchange cannot
// run inside a tunnel that does not come up. After Recover without a
// handshake (on the injected clock) the other side drops its key, the
// classical handshake brings the tunnel back, and a new post-quantum key
// follows at once.
func TestPSKRecovers(t *testing.T) {
	t.Parallel()
	const recoverAfter = 20 * time.Second
	clk := newFakeClock()
	step := func() { clk.Advance(10 * time.Millisecond) }
	nodes := newMemPair(t, func(_ int, c *Config) { c.Clock, c.Recover = clk, recoverAfter })
	psk := waitPQ(t, nodes, Key{}, 10*time.Second, step)
	ini, resp := roles(nodes)
	for _, lost := range []*memNode{resp, ini} {
		other := ini
		if lost == ini {
			other = resp
		}
		ctx := context.Background()
		if err := lost.ov.SetPeers(ctx, nil); err != nil {
			t.Fatal(err)
		}
		if err := lost.ov.SetPeers(ctx, []Peer{other.peer()}); err != nil {
			t.Fatal(err)
		}
		if reaches(t, lost, other, time.Second) {
			t.Fatal("a handshake without the pre-shared key succeeded")
		}
		clk.Advance(recoverAfter + 2*time.Second)
		if !waitFor(20*time.Second, step, func() bool { return reaches(t, lost, other, 200*time.Millisecond) }) {
			t.Fatalf("the tunnel did not come back after the %s recovery period", recoverAfter)
		}
		psk = waitPQ(t, nodes, psk, 10*time.Second, step)
		t.Logf("key lost by the %s: recovered", map[bool]string{true: "initiator", false: "responder"}[lost == ini])
	}
	ini.ov.psk.mu.Lock()
	resp.ov.psk.mu.Lock()
	n := ini.ov.psk.recoveries + resp.ov.psk.recoveries
	resp.ov.psk.mu.Unlock()
	ini.ov.psk.mu.Unlock()
	if n != 2 {
		t.Fatalf("%d keys dropped by the watchdog, want 2 (one per loss)", n)
	}
}
