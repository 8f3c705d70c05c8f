package overlay

import (
	"bytes"
	"context"
	"crypto/mlkem"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/netip"
	"sync"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/wire"
)

// Timing of the key exchange.
const (
	replyTimeout = 3 * time.Second // for the response to an init
	ackTimeout   = time.Second     // for the acknowledgement of a confirm
	confirmTries = 3
	// firstContact is how long the responder of a new pair waits (plus up
	// to as much again) before it starts WireGuard's keepalives, so the
	// pair's first handshake normally comes from the initiator alone; see
	// Overlay.SetPeers.
	firstContact = time.Second
)

// packetConn is the key exchange's UDP socket on this node's overlay
// address (a *net.UDPConn on a node).
type packetConn interface {
	ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error)
	WriteToUDPAddrPort(b []byte, addr netip.AddrPort) (int, error)
	Close() error
}

// pair is the exchange state with one peer. Guarded by exchange.mu.
type pair struct {
	peer      Key
	identity  identity.PublicKey
	initiator bool // this node initiates the pair's exchanges
	cancel    context.CancelFunc
	kick      chan struct{} // wakes the initiator's loop for an exchange now
	keepalive bool          // WireGuard keepalives are on (see firstContact)

	lastEpoch uint64    // initiator: the last epoch used; responder: the last init accepted
	out       *outgoing // initiator: the exchange in flight
	pending   *answered // responder: answered, not yet confirmed
	done      *answered // responder: the last key installed, to acknowledge again

	// Post-quantum state (see watch).
	keyed          bool      // a key from an exchange is installed
	hsAtInstall    time.Time // the device's last handshake when the first key was installed
	pq             bool      // a WireGuard handshake completed since: sessions use the key
	classicalSince time.Time // when the pair started without a post-quantum session
	blocked        bool      // past PQGrace without one: traffic stopped
	lastHS         time.Time // the device's last handshake as last seen
	progress       time.Time // when the pair was added or lastHS last changed
	failures       int       // exchanges failed in a row
	lastErr        string
}

// outgoing is an exchange the initiator runs.
type outgoing struct {
	epoch     uint64
	dk        *mlkem.DecapsulationKey768
	initBytes []byte
	respHash  [32]byte
	psk       Key
	answered  chan struct{} // closed when a valid response arrived
	acked     chan struct{} // closed when the acknowledgement arrived
	gotResp   bool
	gotAck    bool
}

// answered is a key the responder derived for an init it answered.
type answered struct {
	epoch    uint64
	respHash [32]byte
	psk      Key
}

// exchange runs the key exchange with every peer.
type exchange struct {
	o    *Overlay
	clk  Clock
	conn packetConn
	ctx  context.Context
	stop context.CancelFunc
	wg   sync.WaitGroup
	// checking serializes check; it is taken before mu.
	checking sync.Mutex
	mu       sync.Mutex
	pairs    map[Key]*pair
	// rotations counts installed keys per peer, for tests and the bench.
	rotations map[Key]int
	stats     counters
}

func newExchange(o *Overlay, c packetConn) *exchange {
	x := &exchange{o: o, clk: o.cfg.Clock, conn: c, pairs: map[Key]*pair{}, rotations: map[Key]int{}}
	x.ctx, x.stop = context.WithCancel(context.Background())
	x.wg.Go(x.receive)
	x.wg.Go(x.watch)
	return x
}

// close stops every goroutine of the exchange and waits for them.
func (x *exchange) close() {
	x.stop()
	x.conn.Close()
	x.wg.Wait()
}

// initiates reports whether this node initiates the exchanges with a
// peer whose identity is id: the node with the lower identity key does.
func (x *exchange) initiates(id identity.PublicKey) bool {
	self := x.o.cfg.Identity.Public()
	return bytes.Compare(self[:], id[:]) < 0
}

// keepaliveOn reports whether peer p's WireGuard keepalives are on: from
// the start when this node initiates, after firstContact otherwise.
func (x *exchange) keepaliveOn(p Peer) bool {
	if x.initiates(p.Identity) {
		return true
	}
	x.mu.Lock()
	defer x.mu.Unlock()
	pr := x.pairs[p.Key]
	return pr != nil && pr.identity == p.Identity && pr.keepalive
}

// peersChanged starts the exchange with new peers and forgets removed
// ones (and peers whose identity changed, which start over).
func (x *exchange) peersChanged(peers map[Key]Peer, gone []Key) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for k, p := range peers {
		if pr := x.pairs[k]; pr != nil && pr.identity != p.Identity {
			gone = append(gone, k)
		}
	}
	for _, k := range gone {
		if p := x.pairs[k]; p != nil {
			p.cancel()
			p.forget()
		}
		delete(x.pairs, k)
	}
	now := x.clk.Now()
	for k, p := range peers {
		if _, ok := x.pairs[k]; ok {
			continue
		}
		ctx, cancel := context.WithCancel(x.ctx)
		pr := &pair{peer: k, identity: p.Identity, initiator: x.initiates(p.Identity), cancel: cancel,
			kick: make(chan struct{}, 1), classicalSince: now, progress: now}
		pr.keepalive = pr.initiator
		x.pairs[k] = pr
		if pr.initiator {
			x.wg.Go(func() { x.initiate(ctx, k, pr.kick) })
		} else {
			x.wg.Go(func() { x.startKeepalive(ctx, k) })
		}
	}
}

// forget clears the secrets a pair holds.
func (p *pair) forget() {
	for _, a := range []*answered{p.pending, p.done} {
		if a != nil {
			clear(a.psk[:])
		}
	}
	p.pending, p.done, p.out = nil, nil, nil
}

// startKeepalive turns peer k's keepalives on after firstContact (and a
// jitter of as much again), unless the pair is gone by then.
func (x *exchange) startKeepalive(ctx context.Context, k Key) {
	select {
	case <-ctx.Done():
		return
	case <-x.clk.After(firstContact + rand.N(firstContact)):
	}
	if err := x.o.enableKeepalive(k); err != nil {
		x.o.log.Warn("overlay: start keepalives", "peer", k.String(), "err", err)
	}
}

// initiate runs an exchange with peer k at once, then every Rotate, and
// retries a failed one after a short jittered pause.
func (x *exchange) initiate(ctx context.Context, k Key, kick <-chan struct{}) {
	rotate := x.o.cfg.Rotate
	for {
		// ±10%, so rotations do not stay in step with WireGuard's rekeys.
		wait := rotate - rotate/10 + rand.N(rotate/5+1)
		if err := x.run(ctx, k); err != nil {
			if ctx.Err() != nil {
				return
			}
			x.failed(k, err)
			wait = time.Second + rand.N(time.Second)
		}
		select {
		case <-ctx.Done():
			return
		case <-x.clk.After(wait):
		case <-kick:
		}
	}
}

// failed records a failed exchange: counted, logged at debug the first
// times and as a warning while the pair has no post-quantum session (see
// Overlay.Problems for what the node reports).
func (x *exchange) failed(k Key, err error) {
	x.stats.failed.Add(1)
	x.mu.Lock()
	p := x.pairs[k]
	n, pq := 0, true
	if p != nil {
		p.failures++
		p.lastErr = err.Error()
		n, pq = p.failures, p.pq
	}
	x.mu.Unlock()
	if !pq && n%10 == 3 {
		x.o.log.Warn("overlay: post-quantum key exchange keeps failing; traffic with the peer is protected classically only until it succeeds",
			"peer", k.String(), "failures", n, "err", err)
		return
	}
	x.o.log.Debug("overlay key exchange failed; retrying", "peer", k.String(), "err", err)
}

// Errors of one exchange run, for the log and Overlay.Problems.
var (
	errNoAnswer = errors.New("no answer to the key exchange (is the peer up and on the same ledger?)")
	errNoAck    = errors.New("the peer did not acknowledge the new key")
	errGone     = errors.New("no longer a peer")
)

// run does one exchange as initiator: init, response, confirm until
// acknowledged, then install.
func (x *exchange) run(ctx context.Context, k Key) error {
	peer, ok := x.o.peer(k)
	if !ok {
		return errGone
	}
	dk, err := mlkem.GenerateKey768()
	if err != nil {
		return err
	}
	out := &outgoing{dk: dk, answered: make(chan struct{}), acked: make(chan struct{})}
	now := x.clk.Now()
	x.mu.Lock()
	p := x.pairs[k]
	if p == nil {
		x.mu.Unlock()
		return errGone
	}
	out.epoch = max(uint64(now.UnixNano()), p.lastEpoch+1)
	p.lastEpoch = out.epoch
	init := &pskInit{header: x.header(peer, out.epoch, now), EK: dk.EncapsulationKey().Bytes()}
	if out.initBytes, err = wire.Marshal(init); err != nil {
		x.mu.Unlock()
		return err
	}
	p.out = out
	x.mu.Unlock()
	defer x.endRun(k, out)
	if err := x.send(k, init); err != nil {
		return err
	}
	if err := x.await(ctx, out.answered, replyTimeout, errNoAnswer); err != nil {
		return err
	}
	confirm := &pskConfirm{header: x.header(peer, out.epoch, x.clk.Now()), RespHash: out.respHash}
	for range confirmTries {
		if err := x.send(k, confirm); err != nil {
			return err
		}
		err := x.await(ctx, out.acked, ackTimeout, errNoAck)
		if err == nil {
			return x.installRekey(ctx, k, out.psk)
		}
		if !errors.Is(err, errNoAck) {
			return err
		}
	}
	return errNoAck
}

// endRun forgets the exchange out once its run returns.
func (x *exchange) endRun(k Key, out *outgoing) {
	x.mu.Lock()
	defer x.mu.Unlock()
	if p := x.pairs[k]; p != nil && p.out == out {
		p.out = nil
	}
	clear(out.psk[:])
}

func (x *exchange) await(ctx context.Context, c <-chan struct{}, d time.Duration, timeout error) error {
	select {
	case <-c:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-x.clk.After(d):
		return timeout
	}
}

func (x *exchange) header(peer Peer, epoch uint64, now time.Time) header {
	return header{From: x.o.cfg.Identity.Public(), To: peer.Identity, FromWG: x.o.pub, ToWG: peer.Key,
		Epoch: epoch, Expires: now.Add(msgLifetime).Unix()}
}

// send signs m and sends it to peer k's overlay address.
func (x *exchange) send(k Key, m any) error {
	b, err := seal(x.o.cfg.Identity, m)
	if err != nil {
		return err
	}
	a, err := Addr(x.o.cfg.Prefix, k)
	if err != nil {
		return err
	}
	_, err = x.conn.WriteToUDPAddrPort(b, netip.AddrPortFrom(a, ControlPort))
	return err
}

func (x *exchange) receive() {
	buf := make([]byte, maxMessage+1)
	for {
		n, from, err := x.conn.ReadFromUDPAddrPort(buf)
		if err != nil {
			if x.ctx.Err() != nil {
				return
			}
			continue
		}
		if err := x.handle(buf[:n], from.Addr()); err != nil {
			x.o.log.Debug("overlay key exchange message refused", "from", from.String(), "err", err)
		}
	}
}

// handle checks one datagram: shape, sender (the overlay address it came
// from must be the WireGuard key it claims, and that key a peer's with the
// identity it claims), addressee, freshness, the sender's role and the
// signature; then acts on it.
func (x *exchange) handle(b []byte, from netip.Addr) error {
	e, err := decodeEnvelope(b)
	if err != nil {
		return err
	}
	m, h, tag := e.message()
	peer, ok := x.o.peer(h.FromWG)
	switch {
	case !ok:
		return fmt.Errorf("%w: from a key that is not a peer", ErrMessage)
	case !Owns(x.o.cfg.Prefix, from, h.FromWG):
		return fmt.Errorf("%w: sent from %s, not the address of its key", ErrMessage, from)
	case h.From != peer.Identity:
		return fmt.Errorf("%w: identity does not match the peer's", ErrMessage)
	case h.To != x.o.cfg.Identity.Public() || h.ToWG != x.o.pub:
		return fmt.Errorf("%w: addressed to another node", ErrMessage)
	}
	now := x.clk.Now()
	if h.Expires <= now.Unix() || h.Expires > now.Add(maxLifetime).Unix() {
		return fmt.Errorf("%w: expires at %d", ErrStale, h.Expires)
	}
	// Inits and confirms come from the pair's initiator, the others from
	// its responder.
	fromInitiator := e.Init != nil || e.Confirm != nil
	if fromInitiator != !x.initiates(peer.Identity) {
		return fmt.Errorf("%w: %s from the wrong side of the pair", ErrMessage, tag)
	}
	if err := peer.Identity.Verify(tag, pskVersion, m, e.Sig); err != nil {
		return fmt.Errorf("%w: %s signature: %v", ErrMessage, tag, err)
	}
	switch {
	case e.Init != nil:
		return x.answer(peer, e.Init)
	case e.Resp != nil:
		return x.complete(peer, e.Resp)
	case e.Confirm != nil:
		return x.confirmed(peer, e.Confirm)
	default:
		return x.acked(peer, e.Ack)
	}
}

// answer is the responder's side of an init: encapsulate to the
// initiator's key, keep the derived key pending and reply. The key is
// installed only when the initiator confirms it got the reply, so a reply
// lost on the way (a tunnel that carries traffic one way only) leaves both
// sides on the key they had.
func (x *exchange) answer(peer Peer, init *pskInit) error {
	x.mu.Lock()
	p := x.pairs[peer.Key]
	if p == nil {
		x.mu.Unlock()
		return fmt.Errorf("%w: from a peer being removed", ErrStale)
	}
	if init.Epoch <= p.lastEpoch {
		x.mu.Unlock()
		return fmt.Errorf("%w: epoch %d not after %d", ErrStale, init.Epoch, p.lastEpoch)
	}
	p.lastEpoch = init.Epoch
	x.mu.Unlock()
	ek, err := mlkem.NewEncapsulationKey768(init.EK)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMessage, err)
	}
	shared, ct := ek.Encapsulate()
	initHash, initBytes, err := bodyHash(init)
	if err != nil {
		return err
	}
	resp := &pskResp{header: x.header(peer, init.Epoch, x.clk.Now()), InitHash: initHash, CT: ct}
	respHash, respBytes, err := bodyHash(resp)
	if err != nil {
		return err
	}
	psk, err := derivePSK(shared, initBytes, respBytes)
	if err != nil {
		return err
	}
	x.mu.Lock()
	if p.lastEpoch == init.Epoch && x.pairs[peer.Key] == p {
		if p.pending != nil {
			clear(p.pending.psk[:])
		}
		p.pending = &answered{epoch: init.Epoch, respHash: respHash, psk: psk}
	}
	x.mu.Unlock()
	return x.send(peer.Key, resp)
}

// complete is the initiator's side of a response: decapsulate and derive
// the key, which run confirms and installs once acknowledged.
func (x *exchange) complete(peer Peer, resp *pskResp) error {
	x.mu.Lock()
	p := x.pairs[peer.Key]
	var out *outgoing
	if p != nil {
		out = p.out
	}
	if out == nil || out.gotResp || resp.Epoch != out.epoch || resp.InitHash != sha256.Sum256(out.initBytes) {
		x.mu.Unlock()
		return fmt.Errorf("%w: answers no pending exchange", ErrStale)
	}
	out.gotResp = true
	x.mu.Unlock()
	shared, err := out.dk.Decapsulate(resp.CT)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMessage, err)
	}
	respHash, respBytes, err := bodyHash(resp)
	if err != nil {
		return err
	}
	psk, err := derivePSK(shared, out.initBytes, respBytes)
	if err != nil {
		return err
	}
	x.mu.Lock()
	out.psk, out.respHash, out.dk = psk, respHash, nil
	x.mu.Unlock()
	close(out.answered)
	return nil
}

// confirmed is the responder's side of a confirm: install the pending key
// and acknowledge it (again, for a repeated confirm of the key installed
// last).
func (x *exchange) confirmed(peer Peer, c *pskConfirm) error {
	x.mu.Lock()
	p := x.pairs[peer.Key]
	if p == nil {
		x.mu.Unlock()
		return fmt.Errorf("%w: from a peer being removed", ErrStale)
	}
	if d := p.done; d != nil && d.epoch == c.Epoch && d.respHash == c.RespHash {
		x.mu.Unlock()
		return x.send(peer.Key, &pskAck{header: x.header(peer, c.Epoch, x.clk.Now()), RespHash: c.RespHash})
	}
	a := p.pending
	if a == nil || a.epoch != c.Epoch || a.respHash != c.RespHash {
		x.mu.Unlock()
		return fmt.Errorf("%w: confirms no pending key", ErrStale)
	}
	p.pending, p.done = nil, &answered{epoch: a.epoch, respHash: a.respHash}
	x.mu.Unlock()
	if _, _, err := x.install(peer.Key, a.psk); err != nil {
		return err
	}
	clear(a.psk[:])
	return x.send(peer.Key, &pskAck{header: x.header(peer, c.Epoch, x.clk.Now()), RespHash: c.RespHash})
}

// acked is the initiator's side of an acknowledgement: run installs.
func (x *exchange) acked(peer Peer, a *pskAck) error {
	x.mu.Lock()
	defer x.mu.Unlock()
	p := x.pairs[peer.Key]
	var out *outgoing
	if p != nil {
		out = p.out
	}
	if out == nil || !out.gotResp || out.gotAck || a.Epoch != out.epoch || a.RespHash != out.respHash {
		return fmt.Errorf("%w: acknowledges no pending key", ErrStale)
	}
	out.gotAck = true
	close(out.acked)
	return nil
}

// install sets psk as peer k's pre-shared key. It reports whether the
// pair's sessions are not post-quantum yet (its first key, or the first
// after a recovery) and the device's last handshake with k when the key
// was installed.
func (x *exchange) install(k Key, psk Key) (bool, time.Time, error) {
	if err := x.o.setPSK(k, psk); err != nil {
		return false, time.Time{}, err
	}
	hs, err := x.o.lastHandshake(k)
	if err != nil {
		return false, time.Time{}, err
	}
	x.mu.Lock()
	p := x.pairs[k]
	classical := p != nil && !p.pq
	if p != nil {
		if !p.keyed {
			p.keyed, p.hsAtInstall = true, hs
		}
		p.failures, p.lastErr = 0, ""
	}
	x.rotations[k]++
	x.mu.Unlock()
	x.stats.installed.Add(1)
	return classical, hs, nil
}

// rehandshakeGap is how long after a handshake the initiator waits before
// it starts another: a peer ignores a second initiation within
// device.HandshakeInitationRate (20 ms) of the last one it took.
const rehandshakeGap = 100 * time.Millisecond

// installRekey is install on the initiator: while the pair's sessions
// are not post-quantum (its first key, or the first after a recovery),
// the key is followed by a new WireGuard handshake, so the sessions use
// it within a round trip rather than at the next rekey, up to 2 minutes
// later. Renewals of a post-quantum pair's key wait for the next rekey.
func (x *exchange) installRekey(ctx context.Context, k Key, psk Key) error {
	classical, hs, err := x.install(k, psk)
	if err != nil || !classical {
		return err
	}
	// WireGuard's handshake times are on the system clock.
	if wait := time.Until(hs.Add(rehandshakeGap)); wait > 0 {
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(wait):
		}
	}
	x.o.rehandshake(k)
	return nil
}

// Rotations returns how many pre-shared keys were installed with peer k.
func (o *Overlay) Rotations(k Key) int {
	o.psk.mu.Lock()
	defer o.psk.mu.Unlock()
	return o.psk.rotations[k]
}
