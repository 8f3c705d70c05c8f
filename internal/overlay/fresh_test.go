package overlay

import (
	"fmt"
	"runtime"
	"sync"
	"testing"
	"time"
)

// cpuHog keeps every CPU busy until the test ends.
func cpuHog(t testing.TB) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range runtime.NumCPU() {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
			}
		})
	}
	t.Cleanup(func() { close(stop); wg.Wait() })
}

// freshPairDeadline is how long a fresh pair may take to carry traffic
// both ways on a post-quantum session. Normally it takes well under two
// seconds; the margin covers WireGuard's own recovery (a new handshake
// 15 s after a session stops answering) on a loaded machine.
const freshPairDeadline = 30 * time.Second

// Fifty fresh pairs in a row, with every CPU busy, each connect: both
// sides hold the same pre-shared key, their sessions use it (a handshake
// completed after it was installed) and datagrams cross both ways. Before
// the exchange was confirmed in four messages, a responder installed the
// key as soon as it answered; when the pair's first session carried
// traffic one way only (two first handshakes crossing in wireguard-go's
// parallel handshake workers), the answer never arrived, WireGuard's
// re-handshake then failed on the mismatched key, and the pair stayed
// down until the watchdog dropped the key minutes later.
func TestFreshPairs(t *testing.T) {
	cpuHog(t)
	failed := 0
	var slowest time.Duration
	for i := range 50 {
		start := time.Now()
		ok := t.Run(fmt.Sprint(i), func(t *testing.T) {
			nodes := newMemPair(t, nil)
			a, b := nodes[0], nodes[1]
			up := waitFor(freshPairDeadline, func() { a.ov.psk.check(); b.ov.psk.check() }, func() bool {
				return agreed(nodes) != (Key{}) && a.ov.PostQuantum(b.ov.PublicKey()) && b.ov.PostQuantum(a.ov.PublicKey())
			})
			if !up {
				ka, _ := a.ov.PresharedKey(b.ov.PublicKey())
				kb, _ := b.ov.PresharedKey(a.ov.PublicKey())
				t.Fatalf("no post-quantum session within %s: keys agree %v (set: %v, %v), problems %+v %+v",
					freshPairDeadline, ka == kb, ka != Key{}, kb != Key{}, a.ov.Problems(), b.ov.Problems())
			}
			if !reaches(t, a, b, 5*time.Second) || !reaches(t, b, a, 5*time.Second) {
				t.Fatal("a post-quantum pair carries no traffic")
			}
		})
		if !ok {
			failed++
		}
		slowest = max(slowest, time.Since(start))
	}
	t.Logf("slowest pair: %s", slowest.Round(time.Millisecond))
	if failed > 0 {
		t.Fatalf("%d of 50 fresh pairs did not connect", failed)
	}
}
