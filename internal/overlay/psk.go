package overlay

import (
	"bytes"
	"context"
	"crypto/hkdf"
	"crypto/mlkem"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/wire"
)

// ControlPort is the UDP port of the key exchange on overlay addresses.
const ControlPort = 4431

// Limits of the key exchange.
const (
	maxMessage   = 4096             // bytes of one datagram
	msgLifetime  = 30 * time.Second // a message's expiry after it is made
	maxLifetime  = 60 * time.Second // the furthest expiry accepted
	replyTimeout = 3 * time.Second
	settle       = 2 * time.Second // before the first exchange with a new peer
	pskInfo      = "zerogrid overlay psk v1"
	tagInit      = "overlay-psk-init"
	tagResp      = "overlay-psk-resp"
)

// Errors of the key exchange.
var (
	ErrMessage = errors.New("overlay: bad key-exchange message")
	ErrStale   = errors.New("overlay: stale key-exchange message")
)

// header names the pair and the exchange; it starts both messages.
type header struct {
	From    identity.PublicKey `cbor:"from"`
	To      identity.PublicKey `cbor:"to"`
	FromWG  Key                `cbor:"from_wg"`
	ToWG    Key                `cbor:"to_wg"`
	Epoch   uint64             `cbor:"epoch"`
	Expires int64              `cbor:"exp"`
}

// pskInit carries the initiator's ML-KEM-768 encapsulation key.
type pskInit struct {
	header
	EK []byte `cbor:"ek"`
}

// pskResp carries the ciphertext, bound to the init it answers.
type pskResp struct {
	header
	InitHash [32]byte `cbor:"init_hash"`
	CT       []byte   `cbor:"ct"`
}

// envelope is one datagram: exactly one message and its signature.
type envelope struct {
	Init *pskInit           `cbor:"init,omitempty"`
	Resp *pskResp           `cbor:"resp,omitempty"`
	Sig  identity.Signature `cbor:"sig"`
}

// decodeEnvelope parses a datagram and checks its shape (not its
// signature or freshness).
func decodeEnvelope(b []byte) (*envelope, error) {
	if len(b) > maxMessage {
		return nil, fmt.Errorf("%w: %d bytes", ErrMessage, len(b))
	}
	var e envelope
	if err := wire.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMessage, err)
	}
	switch {
	case (e.Init == nil) == (e.Resp == nil):
		return nil, fmt.Errorf("%w: want exactly one of init and resp", ErrMessage)
	case e.Init != nil && len(e.Init.EK) != mlkem.EncapsulationKeySize768:
		return nil, fmt.Errorf("%w: encapsulation key of %d bytes", ErrMessage, len(e.Init.EK))
	case e.Resp != nil && len(e.Resp.CT) != mlkem.CiphertextSize768:
		return nil, fmt.Errorf("%w: ciphertext of %d bytes", ErrMessage, len(e.Resp.CT))
	}
	return &e, nil
}

func (e *envelope) header() header {
	if e.Init != nil {
		return e.Init.header
	}
	return e.Resp.header
}

// pair is the exchange state with one peer.
type pair struct {
	peer      Key
	initiator bool
	cancel    context.CancelFunc // the initiator's loop
	epoch     uint64             // initiator: the pending exchange; responder: the last accepted
	dk        *mlkem.DecapsulationKey768
	initBytes []byte
	done      chan struct{} // closed when the pending exchange completes
	since     time.Time     // when the peer was added
	kick      chan struct{} // wakes the initiator's loop for an exchange now
}

// exchange runs the key exchange with every peer.
type exchange struct {
	o     *Overlay
	conn  *net.UDPConn
	ctx   context.Context
	stop  context.CancelFunc
	wg    sync.WaitGroup
	mu    sync.Mutex
	pairs map[Key]*pair
	// Rotations counts installed keys, for tests and metrics.
	rotations map[Key]int
	// recoveries counts keys dropped by watch.
	recoveries int
}

func newExchange(o *Overlay) (*exchange, error) {
	c, err := net.ListenUDP("udp6", net.UDPAddrFromAddrPort(netip.AddrPortFrom(o.addr, ControlPort)))
	if err != nil {
		return nil, fmt.Errorf("overlay: key exchange socket: %w", err)
	}
	x := &exchange{o: o, conn: c, pairs: map[Key]*pair{}, rotations: map[Key]int{}}
	x.ctx, x.stop = context.WithCancel(context.Background())
	x.wg.Go(x.receive)
	x.wg.Go(x.watch)
	return x, nil
}

func (x *exchange) close() {
	x.stop()
	x.conn.Close()
	x.wg.Wait()
}

// peersChanged starts exchanges with new peers and forgets removed ones.
func (x *exchange) peersChanged(peers map[Key]Peer, gone []Key) {
	x.mu.Lock()
	defer x.mu.Unlock()
	for _, k := range gone {
		if p := x.pairs[k]; p != nil && p.cancel != nil {
			p.cancel()
		}
		delete(x.pairs, k)
	}
	self := x.o.cfg.Identity.Public()
	for k, p := range peers {
		if _, ok := x.pairs[k]; ok {
			continue
		}
		pr := &pair{peer: k, initiator: bytes.Compare(self[:], p.Identity[:]) < 0, since: time.Now(), kick: make(chan struct{}, 1)}
		x.pairs[k] = pr
		if pr.initiator {
			ctx, cancel := context.WithCancel(x.ctx)
			pr.cancel = cancel
			x.wg.Go(func() { x.initiate(ctx, k, pr.kick) })
		}
	}
}

// initiate renews the pre-shared key with peer k every Rotate, retrying a
// failed exchange after a short jittered pause.
func (x *exchange) initiate(ctx context.Context, k Key, kick <-chan struct{}) {
	// Let the first handshakes settle: a key installed while a handshake
	// is in flight fails that handshake (retried 5 s later by WireGuard).
	select {
	case <-ctx.Done():
		return
	case <-time.After(settle + rand.N(settle)):
	}
	for {
		// ±10%, so rotations do not stay in step with WireGuard's rekeys.
		wait := x.o.cfg.Rotate - x.o.cfg.Rotate/10 + rand.N(x.o.cfg.Rotate/5+1)
		if err := x.run(ctx, k); err != nil {
			if ctx.Err() != nil {
				return
			}
			x.o.log.Debug("overlay key exchange failed; retrying", "peer", k.String(), "err", err)
			wait = time.Second + rand.N(time.Second)
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(wait):
		case <-kick:
		}
	}
}

// watch drops the pre-shared key of a peer with which no WireGuard
// handshake succeeded for Recover (see Config.Recover), so the sides that
// disagree on the key (one restarted, or an answer was lost just before
// the sessions expired) meet again on a classical handshake, and then
// asks for a new exchange at once.
func (x *exchange) watch() {
	every := min(x.o.cfg.Recover/4, 5*time.Second)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-x.ctx.Done():
			return
		case <-t.C:
		}
		states, err := x.o.states()
		if err != nil {
			continue
		}
		now := time.Now()
		x.mu.Lock()
		type stuckPair struct {
			*pair
			psk Key
		}
		var stuck []stuckPair
		for k, p := range x.pairs {
			st, ok := states[k]
			if !ok || st.psk == (Key{}) {
				continue
			}
			last := st.lastHandshake
			if last.Before(p.since) {
				last = p.since
			}
			if now.Sub(last) > x.o.cfg.Recover {
				stuck = append(stuck, stuckPair{p, st.psk})
			}
		}
		x.mu.Unlock()
		for _, p := range stuck {
			if dropped, err := x.o.dropPSK(p.peer, p.psk); err != nil || !dropped {
				continue
			}
			x.o.log.Warn("overlay: no handshake with a peer for too long; dropped the pre-shared key to reconnect classically, a new exchange follows",
				"peer", p.peer.String(), "after", x.o.cfg.Recover.String())
			x.mu.Lock()
			x.recoveries++
			x.mu.Unlock()
			select {
			case p.kick <- struct{}{}:
			default:
			}
		}
	}
}

// run does one exchange as initiator.
func (x *exchange) run(ctx context.Context, k Key) error {
	peer, ok := x.o.peer(k)
	if !ok {
		return errors.New("no longer a peer")
	}
	dk, err := mlkem.GenerateKey768()
	if err != nil {
		return err
	}
	init := &pskInit{header: x.header(peer), EK: dk.EncapsulationKey().Bytes()}
	initBytes, err := wire.Marshal(init)
	if err != nil {
		return err
	}
	done := make(chan struct{})
	x.mu.Lock()
	p := x.pairs[k]
	if p == nil {
		x.mu.Unlock()
		return errors.New("no longer a peer")
	}
	p.epoch, p.dk, p.initBytes, p.done = init.Epoch, dk, initBytes, done
	x.mu.Unlock()
	sig, err := x.o.cfg.Identity.Sign(tagInit, 1, init)
	if err != nil {
		return err
	}
	if err := x.send(k, &envelope{Init: init, Sig: sig}); err != nil {
		return err
	}
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	case <-time.After(replyTimeout):
		return errors.New("no answer")
	}
}

func (x *exchange) header(peer Peer) header {
	now := time.Now()
	return header{From: x.o.cfg.Identity.Public(), To: peer.Identity, FromWG: x.o.pub, ToWG: peer.Key,
		Epoch: uint64(now.UnixNano()), Expires: now.Add(msgLifetime).Unix()}
}

func (x *exchange) send(k Key, e *envelope) error {
	b, err := wire.Marshal(e)
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
// identity it claims), addressee, freshness and signature; then answers an
// init or completes an exchange.
func (x *exchange) handle(b []byte, from netip.Addr) error {
	e, err := decodeEnvelope(b)
	if err != nil {
		return err
	}
	h := e.header()
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
	now := time.Now()
	if h.Expires <= now.Unix() || h.Expires > now.Add(maxLifetime).Unix() {
		return fmt.Errorf("%w: expires at %d", ErrStale, h.Expires)
	}
	if e.Init != nil {
		if err := peer.Identity.Verify(tagInit, 1, e.Init, e.Sig); err != nil {
			return fmt.Errorf("%w: init signature: %v", ErrMessage, err)
		}
		return x.answer(peer, e.Init)
	}
	if err := peer.Identity.Verify(tagResp, 1, e.Resp, e.Sig); err != nil {
		return fmt.Errorf("%w: resp signature: %v", ErrMessage, err)
	}
	return x.complete(peer, e.Resp)
}

// answer is the responder's side: encapsulate to the initiator's key,
// reply, and install the new key.
func (x *exchange) answer(peer Peer, init *pskInit) error {
	x.mu.Lock()
	p := x.pairs[peer.Key]
	if p == nil || p.initiator {
		x.mu.Unlock()
		return fmt.Errorf("%w: init from a peer this node initiates with", ErrMessage)
	}
	if init.Epoch <= p.epoch {
		x.mu.Unlock()
		return fmt.Errorf("%w: epoch %d not after %d", ErrStale, init.Epoch, p.epoch)
	}
	p.epoch = init.Epoch
	x.mu.Unlock()
	ek, err := mlkem.NewEncapsulationKey768(init.EK)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMessage, err)
	}
	shared, ct := ek.Encapsulate()
	initBytes, err := wire.Marshal(init)
	if err != nil {
		return err
	}
	resp := &pskResp{header: x.header(peer), InitHash: sha256.Sum256(initBytes), CT: ct}
	resp.Epoch = init.Epoch
	sig, err := x.o.cfg.Identity.Sign(tagResp, 1, resp)
	if err != nil {
		return err
	}
	if err := x.install(peer.Key, shared, initBytes, resp); err != nil {
		return err
	}
	return x.send(peer.Key, &envelope{Resp: resp, Sig: sig})
}

// complete is the initiator's side: decapsulate and install.
func (x *exchange) complete(peer Peer, resp *pskResp) error {
	x.mu.Lock()
	p := x.pairs[peer.Key]
	if p == nil || !p.initiator || p.dk == nil || resp.Epoch != p.epoch || resp.InitHash != sha256.Sum256(p.initBytes) {
		x.mu.Unlock()
		return fmt.Errorf("%w: answers no pending exchange", ErrStale)
	}
	dk, initBytes, done := p.dk, p.initBytes, p.done
	p.dk, p.initBytes = nil, nil
	x.mu.Unlock()
	shared, err := dk.Decapsulate(resp.CT)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrMessage, err)
	}
	if err := x.install(peer.Key, shared, initBytes, resp); err != nil {
		return err
	}
	close(done)
	return nil
}

// install derives the pre-shared key from the shared secret and the
// transcript (the init and the response bodies) and sets it.
func (x *exchange) install(k Key, shared, initBytes []byte, resp *pskResp) error {
	respBytes, err := wire.Marshal(resp)
	if err != nil {
		return err
	}
	salt := sha256.Sum256(append(append([]byte{}, initBytes...), respBytes...))
	b, err := hkdf.Key(sha256.New, shared, salt[:], pskInfo, 32)
	clear(shared)
	if err != nil {
		return err
	}
	psk := Key(b)
	clear(b)
	if err := x.o.setPSK(k, psk); err != nil {
		return err
	}
	x.mu.Lock()
	x.rotations[k]++
	x.mu.Unlock()
	return nil
}

// Rotations returns how many pre-shared keys were installed with peer k.
func (o *Overlay) Rotations(k Key) int {
	o.psk.mu.Lock()
	defer o.psk.mu.Unlock()
	return o.psk.rotations[k]
}
