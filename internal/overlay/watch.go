package overlay

import "time"

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
//     new exchange at once.
func (x *exchange) check() {
	states, err := x.o.states()
	if err != nil {
		return
	}
	now := x.clk.Now()
	var stuck []stuckPair
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
	}
	x.mu.Unlock()
	for _, s := range stuck {
		x.recover(s, now)
	}
}

// recover drops a stuck pair's key; it reports whether it did.
func (x *exchange) recover(s stuckPair, now time.Time) bool {
	if dropped, err := x.o.dropPSK(s.p.peer, s.psk); err != nil || !dropped {
		return false
	}
	x.o.log.Warn("overlay: no handshake with a peer for too long; dropped the pre-shared key to reconnect classically, a new exchange follows",
		"peer", s.p.peer.String(), "after", x.o.cfg.Recover.String())
	x.mu.Lock()
	x.recoveries++
	p := s.p
	if p.pq {
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
