package overlay

import (
	"crypto/mlkem"
	"crypto/rand"
	"errors"
	"net/netip"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/wire"
)

// The responder accepts a fresh, signed init from its peer's address and
// installs nothing until the initiator confirms; it refuses replays,
// older epochs, expired or far-future messages, bad signatures, tampering,
// the wrong sender address or addressee, messages from the wrong side of
// the pair, confirms of no pending key and answers to no exchange.
func TestExchangeRefuses(t *testing.T) {
	t.Parallel()
	nodes := newMemPair(t, nil)
	ini, resp := roles(nodes)
	waitPQ(t, nodes, Key{}, 10*time.Second, nil)
	dk, err := mlkem.GenerateKey768()
	if err != nil {
		t.Fatal(err)
	}
	stranger, err := identity.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	from := ini.ov.Address()
	hdr := func() header {
		now := time.Now()
		return header{From: ini.id.Public(), To: resp.id.Public(), FromWG: ini.ov.PublicKey(), ToWG: resp.ov.PublicKey(),
			Epoch: uint64(now.UnixNano()), Expires: now.Add(msgLifetime).Unix()}
	}
	back := func(h header) header {
		h.From, h.To, h.FromWG, h.ToWG = resp.id.Public(), ini.id.Public(), resp.ov.PublicKey(), ini.ov.PublicKey()
		return h
	}
	// msg signs m (by signer); if tamper is set, it changes m after the
	// signature was made.
	msg := func(m any, signer identity.PrivateKey, tamper func()) []byte {
		b, err := seal(signer, m)
		if err != nil {
			t.Fatal(err)
		}
		if tamper == nil {
			return b
		}
		e, err := decodeEnvelope(b)
		if err != nil {
			t.Fatal(err)
		}
		sig := e.Sig
		tamper()
		b, _ = seal(signer, m)
		e, _ = decodeEnvelope(b)
		e.Sig = sig
		if b, err = wire.Marshal(e); err != nil {
			t.Fatal(err)
		}
		return b
	}
	initMsg := func(h header) *pskInit { return &pskInit{header: h, EK: dk.EncapsulationKey().Bytes()} }
	x := resp.ov.psk
	rot := func() int { return resp.ov.Rotations(ini.ov.PublicKey()) }
	before := rot()
	older := hdr()
	time.Sleep(time.Millisecond)
	fresh := initMsg(hdr())
	freshB := msg(fresh, ini.id, nil)
	if err := x.handle(freshB, from); err != nil {
		t.Fatalf("a fresh init refused: %v", err)
	}
	if rot() != before {
		t.Fatal("the responder installed a key before the initiator confirmed it")
	}
	x.mu.Lock()
	pending := *x.pairs[ini.ov.PublicKey()].pending
	x.mu.Unlock()
	confirm := &pskConfirm{header: hdr(), RespHash: pending.respHash}
	confirm.Epoch = fresh.Epoch
	if err := x.handle(msg(confirm, ini.id, nil), from); err != nil {
		t.Fatalf("a confirm of the pending key refused: %v", err)
	}
	if k, _ := resp.ov.PresharedKey(ini.ov.PublicKey()); rot() != before+1 || k != pending.psk {
		t.Fatal("a confirmed key was not installed")
	}
	if err := x.handle(msg(confirm, ini.id, nil), from); err != nil || rot() != before+1 {
		t.Fatalf("a repeated confirm is acknowledged again without a new install: %v, %d installs", err, rot()-before)
	}

	expired, far, elsewhere := hdr(), hdr(), hdr()
	expired.Expires = time.Now().Add(-time.Second).Unix()
	far.Expires = time.Now().Add(time.Hour).Unix()
	elsewhere.To, elsewhere.ToWG = stranger.Public(), Key{1}
	handle := func(b []byte) error { return x.handle(b, from) }
	_, ct := dk.EncapsulationKey().Encapsulate()
	for name, c := range map[string]struct {
		err  error
		call func() error
	}{
		"replay":             {ErrStale, func() error { return handle(freshB) }},
		"older epoch":        {ErrStale, func() error { return handle(msg(initMsg(older), ini.id, nil)) }},
		"expired":            {ErrStale, func() error { return handle(msg(initMsg(expired), ini.id, nil)) }},
		"expires too late":   {ErrStale, func() error { return handle(msg(initMsg(far), ini.id, nil)) }},
		"stranger signature": {ErrMessage, func() error { return handle(msg(initMsg(hdr()), stranger, nil)) }},
		"signed by receiver": {ErrMessage, func() error { return handle(msg(initMsg(hdr()), resp.id, nil)) }},
		"tampered epoch": {ErrMessage, func() error {
			m := initMsg(hdr())
			return handle(msg(m, ini.id, func() { m.Epoch += 1e9 }))
		}},
		"another addressee": {ErrMessage, func() error { return handle(msg(initMsg(elsewhere), ini.id, nil)) }},
		"wrong source address": {ErrMessage, func() error {
			return x.handle(msg(initMsg(hdr()), ini.id, nil), netip.MustParseAddr("fd00::1"))
		}},
		"init to the initiator": {ErrMessage, func() error {
			return ini.ov.psk.handle(msg(initMsg(back(hdr())), resp.id, nil), resp.ov.Address())
		}},
		"confirm to the initiator": {ErrMessage, func() error {
			return ini.ov.psk.handle(msg(&pskConfirm{header: back(hdr())}, resp.id, nil), resp.ov.Address())
		}},
		"response to the responder": {ErrMessage, func() error {
			return handle(msg(&pskResp{header: hdr(), CT: ct}, ini.id, nil))
		}},
		"confirm of no pending key": {ErrStale, func() error {
			return handle(msg(&pskConfirm{header: hdr(), RespHash: pending.respHash}, ini.id, nil))
		}},
		"response to nothing": {ErrStale, func() error {
			return ini.ov.psk.handle(msg(&pskResp{header: back(hdr()), CT: ct}, resp.id, nil), resp.ov.Address())
		}},
		"ack of nothing": {ErrStale, func() error {
			return ini.ov.psk.handle(msg(&pskAck{header: back(hdr())}, resp.id, nil), resp.ov.Address())
		}},
	} {
		if err := c.call(); !errors.Is(err, c.err) {
			t.Errorf("%s: got %v, want %v", name, err, c.err)
		}
	}
	if got := rot(); got != before+1 {
		t.Fatalf("refused messages installed %d keys", got-before-1)
	}
}
