package overlay

import (
	"net/netip"
	"slices"
	"sync/atomic"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
)

// counters are the exchange's totals (see Overlay.Collector).
type counters struct {
	installed  atomic.Uint64 // keys installed
	failed     atomic.Uint64 // exchanges that failed
	recoveries atomic.Uint64 // keys dropped by the watchdog
}

// watch checks every pair each tick (min(Recover/4, 1 s)) until the
// exchange closes; see check.
func (x *exchange) watch() {
	tick := min(x.o.cfg.Recover/4, time.Second)
	for {
		select {
		case <-x.ctx.Done():
			return
		case <-x.clk.After(tick):
		}
		x.check()
	}
}

// stuckPair is a pair whose pre-shared key the watchdog drops.
type stuckPair struct {
	p   *pair
	psk Key
}

// check does, for every pair:
//   - post-quantum state: the pair's sessions are post-quantum once a
//     WireGuard handshake completed after its first key was installed;
//   - recovery: when the pair has a pre-shared key and no handshake
//     succeeded for Recover (see Config.Recover), the key is dropped so a
//     classical handshake brings the tunnel back, and the initiator runs a
//     new exchange at once;
//   - policy: a pair without a post-quantum session for longer than
//     PQGrace is blocked (all traffic but the key exchange stops, see
//     gate) until it has one.
//
// Checks run one at a time, each on a fresh reading of the device and the
// clock.
func (x *exchange) check() {
	x.checking.Lock()
	defer x.checking.Unlock()
	states, err := x.o.states()
	if err != nil {
		return
	}
	now := x.clk.Now()
	grace := x.o.cfg.PQGrace
	var stuck []stuckPair
	changed := false
	x.mu.Lock()
	for k, p := range x.pairs {
		st, ok := states[k]
		if !ok {
			continue
		}
		if !st.lastHandshake.Equal(p.lastHS) {
			p.lastHS, p.progress = st.lastHandshake, now
		}
		if p.keyed && !p.pq && st.lastHandshake.After(p.hsAtInstall) {
			p.pq = true
			x.o.log.Info("overlay: post-quantum session with peer", "peer", k.String(), "after", now.Sub(p.classicalSince).Round(time.Millisecond).String())
		}
		if st.psk != (Key{}) && now.Sub(p.progress) > x.o.cfg.Recover {
			stuck = append(stuck, stuckPair{p, st.psk})
		}
		if blocked := !p.pq && now.Sub(p.classicalSince) > grace; blocked != p.blocked {
			p.blocked, changed = blocked, true
			if blocked {
				x.o.log.Warn("overlay: no post-quantum key with peer within the grace period; traffic with it is stopped until the key exchange succeeds",
					"peer", k.String(), "grace", grace.String(), "last_error", p.lastErr)
			} else {
				x.o.log.Info("overlay: traffic with peer resumes on post-quantum keys", "peer", k.String())
			}
		}
	}
	x.mu.Unlock()
	for _, s := range stuck {
		if x.recover(s, now) {
			changed = true
		}
	}
	if changed {
		x.o.updateGate()
	}
}

// recover drops a stuck pair's key; it reports whether it did.
func (x *exchange) recover(s stuckPair, now time.Time) bool {
	if dropped, err := x.o.dropPSK(s.p.peer, s.psk); err != nil || !dropped {
		return false
	}
	x.o.log.Warn("overlay: no handshake with a peer for too long; dropped the pre-shared key to reconnect classically, a new exchange follows",
		"peer", s.p.peer.String(), "after", x.o.cfg.Recover.String())
	x.stats.recoveries.Add(1)
	x.mu.Lock()
	p := s.p
	if p.pq {
		// A pair that never was post-quantum keeps its grace period.
		p.classicalSince = now
	}
	p.keyed, p.pq, p.progress = false, false, now
	p.forget()
	x.mu.Unlock()
	select {
	case p.kick <- struct{}{}:
	default:
	}
	return true
}

// updateGate sets the gate's blocked peers from the pairs.
func (o *Overlay) updateGate() {
	o.mu.Lock()
	defer o.mu.Unlock()
	o.updateGateLocked()
}

// updateGateLocked is updateGate with o.mu held.
func (o *Overlay) updateGateLocked() {
	var blocked []blockedPeer
	o.psk.mu.Lock()
	for k, p := range o.psk.pairs {
		peer, ok := o.peers[k]
		if !p.blocked || !ok {
			continue
		}
		a, err := Addr(o.cfg.Prefix, k)
		if err != nil {
			continue
		}
		blocked = append(blocked, blockedPeer{addr: a, prefixes: append([]netip.Prefix{netip.PrefixFrom(a, 128)}, peer.Networks...)})
	}
	o.psk.mu.Unlock()
	o.gate.set(blocked)
}

// PeerProblem is a peer whose traffic is not protected by a post-quantum
// key.
type PeerProblem struct {
	Peer     Key
	Identity identity.PublicKey
	// Blocked: the pair had no post-quantum session for longer than
	// Config.PQGrace, so all traffic with the peer but the key exchange is
	// stopped. Otherwise traffic flows on classical keys only while the
	// exchange is retried.
	Blocked bool
	Since   time.Time // since when the pair has had no post-quantum session
	// Failures is how many exchanges failed in a row, Err the last error.
	Failures int
	Err      string
}

// reportAfter is how long a pair may go without a post-quantum session
// before Problems reports it even if no exchange failed on this side (a
// responder sees no failures: it just receives nothing it accepts). A
// first exchange normally completes within a second or two.
const reportAfter = 10 * time.Second

// Problems returns the peers whose traffic lacks post-quantum protection
// and that are blocked, had an exchange fail, or have been without a
// post-quantum session for more than 10 s, in key order. A new peer whose
// first exchange is under way is not a problem.
func (o *Overlay) Problems() []PeerProblem {
	x := o.psk
	now := x.clk.Now()
	x.mu.Lock()
	defer x.mu.Unlock()
	var out []PeerProblem
	for k, p := range x.pairs {
		if p.pq || (!p.blocked && p.failures == 0 && now.Sub(p.classicalSince) <= reportAfter) {
			continue
		}
		out = append(out, PeerProblem{Peer: k, Identity: p.identity, Blocked: p.blocked, Since: p.classicalSince,
			Failures: p.failures, Err: p.lastErr})
	}
	slices.SortFunc(out, func(a, b PeerProblem) int { return slices.Compare(a.Peer[:], b.Peer[:]) })
	return out
}

// PostQuantum reports whether the pair with peer k has a post-quantum
// session: a WireGuard handshake completed after its first pre-shared
// key from the exchange was installed (as of the last check, at most a
// second ago).
func (o *Overlay) PostQuantum(k Key) bool {
	o.psk.mu.Lock()
	defer o.psk.mu.Unlock()
	p := o.psk.pairs[k]
	return p != nil && p.pq
}
