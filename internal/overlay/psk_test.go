package overlay

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"fmt"
	"net/netip"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/zerogrid/zerogrid/internal/identity"
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
		t.Fatalf("no new post-quantum key agreed within %s (problems: %+v, %+v)", within, a.ov.Problems(), b.ov.Problems())
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
	time.Sleep(100 * time.Millisecond)
	keys := map[Key]bool{key: true}
	for range 3 {
		clk.waitTimer(t, 50*time.Second) // the initiator waits for its next renewal
		clk.Advance(70 * time.Second)    // Rotate + 10 % is the latest renewal
		key = waitPQ(t, nodes, key, 10*time.Second, nil)
		keys[key] = true
		time.Sleep(100 * time.Millisecond) // traffic on the new key
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
	nodes := newMemPair(t, func(_ int, c *Config) { c.Clock, c.Recover, c.PQGrace = clk, recoverAfter, MaxPQGrace })
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
	if n := ini.ov.psk.stats.recoveries.Load() + resp.ov.psk.stats.recoveries.Load(); n != 2 {
		t.Fatalf("%d keys dropped by the watchdog, want 2 (one per loss)", n)
	}
}

// A peer without a post-quantum key past PQGrace is cut off: datagrams
// from and to its overlay address and its networks are dropped both ways,
// and the node reports it among its problems; the key exchange itself
// still passes, and once it succeeds traffic resumes.
func TestPQPolicy(t *testing.T) {
	t.Parallel()
	const grace = 3 * reportAfter
	clk := newFakeClock()
	step := func() { clk.Advance(10 * time.Millisecond) }
	netA := netip.MustParsePrefix("fd4a:1::/64")
	nodes := newMemNodes(t, func(_ int, c *Config) { c.Clock, c.PQGrace = clk, grace })
	a, b := nodes[0], nodes[1]
	ctx := context.Background()
	// b gets a's identity wrong (as with a node on another ledger), so no
	// exchange between them can succeed; it allows a's network. The wrong
	// identity is on the same side of b's as a's, so both agree who
	// initiates.
	var stranger identity.PublicKey
	for {
		k, err := identity.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		stranger = k.Public()
		if b.ov.psk.initiates(stranger) == b.ov.psk.initiates(a.id.Public()) {
			break
		}
	}
	wrong := a.peer()
	wrong.Identity, wrong.Networks = stranger, []netip.Prefix{netA}
	if err := b.ov.SetPeers(ctx, []Peer{wrong}); err != nil {
		t.Fatal(err)
	}
	if err := a.ov.SetPeers(ctx, []Peer{b.peer()}); err != nil {
		t.Fatal(err)
	}
	fromNet := netip.AddrPortFrom(netip.MustParseAddr("fd4a:1::7"), 7)
	toB := netip.AddrPortFrom(b.ov.Address(), 7)
	crosses := func(d time.Duration) (overlay, network, back bool) {
		return reaches(t, a, b, d), sends(t, a, b, fromNet, toB, d), reaches(t, b, a, d)
	}
	// The first datagrams may start a handshake that crosses the other
	// side's first one: WireGuard then retries after 5 s, or repairs a
	// session that works one way only after 15 s.
	if o, n, bk := crosses(30 * time.Second); !o || !n || !bk {
		t.Fatalf("within the grace period traffic flows classically: overlay %v, network %v, back %v", o, n, bk)
	}
	// Within reportAfter, the initiator reports its failed exchanges (the
	// responder sees none); after it, both report the peer.
	ini, _ := roles(nodes)
	if !waitFor(10*time.Second, step, func() bool { return len(ini.ov.Problems()) == 1 && ini.ov.Problems()[0].Failures > 0 }) {
		t.Fatalf("failed exchanges are not reported: %+v", ini.ov.Problems())
	}
	clk.Advance(reportAfter)
	for _, n := range nodes {
		if ps := n.ov.Problems(); len(ps) != 1 || ps[0].Blocked {
			n.ov.psk.mu.Lock()
			for _, p := range n.ov.psk.pairs {
				t.Logf("pair %+v now %v", *p, clk.Now())
			}
			n.ov.psk.mu.Unlock()
			t.Fatalf("after %s without a post-quantum key: problems %+v, want the peer not blocked yet", reportAfter, ps)
		}
	}
	clk.Advance(grace)
	a.ov.psk.check()
	b.ov.psk.check()
	if o, n, bk := crosses(time.Second); o || n || bk {
		t.Fatalf("past the grace period without a post-quantum key traffic still flows: overlay %v, network %v, back %v", o, n, bk)
	}
	if v := metric(t, b.ov, "zgrid_overlay_peers", "blocked"); v != 1 {
		for _, n := range nodes {
			n.ov.psk.mu.Lock()
			for _, p := range n.ov.psk.pairs {
				t.Logf("DEBUG pair %+v now %v", *p, clk.Now())
			}
			n.ov.psk.mu.Unlock()
		}
		t.Fatalf("metrics: %v blocked peers, want 1", v)
	}
	if v := metric(t, ini.ov, "zgrid_overlay_psk_exchange_failures_total", ""); v == 0 {
		t.Fatal("metrics: no failed exchange counted")
	}
	for _, n := range nodes {
		ps := n.ov.Problems()
		if len(ps) != 1 || !ps[0].Blocked {
			t.Fatalf("problems %+v, want the peer blocked", ps)
		}
	}
	// b learns a's identity: the exchange (which the gate lets through)
	// succeeds and traffic resumes.
	right := a.peer()
	right.Networks = []netip.Prefix{netA}
	if err := b.ov.SetPeers(ctx, []Peer{right}); err != nil {
		t.Fatal(err)
	}
	waitPQ(t, nodes, Key{}, 20*time.Second, step)
	if o, n, bk := crosses(5 * time.Second); !o || !n || !bk {
		t.Fatalf("on a post-quantum key traffic does not resume: overlay %v, network %v, back %v", o, n, bk)
	}
	if ps := append(a.ov.Problems(), b.ov.Problems()...); len(ps) != 0 {
		t.Fatalf("problems left: %+v", ps)
	}
	if pq, blocked := metric(t, b.ov, "zgrid_overlay_peers", "pq"), metric(t, b.ov, "zgrid_overlay_peers", "blocked"); pq != 1 || blocked != 0 {
		t.Fatalf("metrics: %v post-quantum and %v blocked peers, want 1 and 0", pq, blocked)
	}
	if v := metric(t, b.ov, "zgrid_overlay_psk_installed_total", ""); v == 0 {
		t.Fatal("metrics: no installed key counted")
	}
}

// metric returns the value of the overlay's metric name (with state
// label state, if not empty).
func metric(t *testing.T, o *Overlay, name, state string) float64 {
	t.Helper()
	reg := prometheus.NewRegistry()
	reg.MustRegister(o.Collector())
	fams, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range fams {
		if f.GetName() != name {
			continue
		}
		for _, m := range f.GetMetric() {
			if state != "" && (len(m.GetLabel()) != 1 || m.GetLabel()[0].GetValue() != state) {
				continue
			}
			if c := m.GetCounter(); c != nil {
				return c.GetValue()
			}
			return m.GetGauge().GetValue()
		}
	}
	t.Fatalf("no metric %s %s", name, state)
	return 0
}

// sends reports whether a datagram from src (an address of a's) to dst
// reaches b within d.
func sends(t *testing.T, a, b *memNode, src, dst netip.AddrPort, d time.Duration) bool {
	msg := fmt.Appendf(nil, "from %s at %d", src, time.Now().UnixNano())
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		a.send(t, src, dst, msg)
		if b.receive(msg, 100*time.Millisecond) {
			return true
		}
	}
	return false
}
