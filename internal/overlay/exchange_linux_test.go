package overlay

import (
	"bytes"
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
// refuses replays, older epochs, expired or far-future messages, bad
// signatures, tampering, the wrong sender address or addressee, inits
// from the wrong side and responses to no pending exchange.
func TestExchangeRefuses(t *testing.T) {
	nodes := newMesh(t, 2, time.Hour)
	ini, resp := nodes[0], nodes[1]
	if bytes.Compare(pk(resp), pk(ini)) < 0 {
		ini, resp = resp, ini
	}
	waitPing(t, ini, resp.ov.Address())
	deadline := time.Now().Add(10 * time.Second)
	for resp.ov.Rotations(ini.ov.PublicKey()) == 0 || ini.ov.Rotations(resp.ov.PublicKey()) == 0 {
		if time.Now().After(deadline) {
			t.Fatal("the first exchange did not complete")
		}
		time.Sleep(50 * time.Millisecond)
	}
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
	// initMsg signs an init (by signer) made from h, then lets after
	// change it.
	initMsg := func(h header, signer identity.PrivateKey, after func(*pskInit)) []byte {
		m := &pskInit{header: h, EK: dk.EncapsulationKey().Bytes()}
		sig, err := signer.Sign(tagInit, 1, m)
		if err != nil {
			t.Fatal(err)
		}
		if after != nil {
			after(m)
		}
		b, err := wire.Marshal(&envelope{Init: m, Sig: sig})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	x := resp.ov.psk
	before := resp.ov.Rotations(ini.ov.PublicKey())
	older := hdr()
	time.Sleep(time.Millisecond)
	fresh := initMsg(hdr(), ini.id, nil)
	if err := x.handle(fresh, from); err != nil {
		t.Fatalf("a fresh init refused: %v", err)
	}
	if got := resp.ov.Rotations(ini.ov.PublicKey()); got != before+1 {
		t.Fatalf("accepted init installed %d keys", got-before)
	}

	expired, far, elsewhere := hdr(), hdr(), hdr()
	expired.Expires = time.Now().Add(-time.Second).Unix()
	far.Expires = time.Now().Add(time.Hour).Unix()
	elsewhere.To, elsewhere.ToWG = stranger.Public(), Key{1}
	stale := func(b []byte) error { return x.handle(b, from) }
	for name, c := range map[string]struct {
		err  error
		call func() error
	}{
		"replay":             {ErrStale, func() error { return stale(fresh) }},
		"older epoch":        {ErrStale, func() error { return stale(initMsg(older, ini.id, nil)) }},
		"expired":            {ErrStale, func() error { return stale(initMsg(expired, ini.id, nil)) }},
		"expires too late":   {ErrStale, func() error { return stale(initMsg(far, ini.id, nil)) }},
		"stranger signature": {ErrMessage, func() error { return stale(initMsg(hdr(), stranger, nil)) }},
		"signed by receiver": {ErrMessage, func() error { return stale(initMsg(hdr(), resp.id, nil)) }},
		"tampered epoch": {ErrMessage, func() error {
			return stale(initMsg(hdr(), ini.id, func(m *pskInit) { m.Epoch += 1e9 }))
		}},
		"another addressee": {ErrMessage, func() error { return stale(initMsg(elsewhere, ini.id, nil)) }},
		"wrong source address": {ErrMessage, func() error {
			return x.handle(initMsg(hdr(), ini.id, nil), netip.MustParseAddr("fd00::1"))
		}},
		"init to the initiator": {ErrMessage, func() error {
			h := hdr()
			h.From, h.To, h.FromWG, h.ToWG = resp.id.Public(), ini.id.Public(), resp.ov.PublicKey(), ini.ov.PublicKey()
			return ini.ov.psk.handle(initMsg(h, resp.id, nil), resp.ov.Address())
		}},
		"response to nothing": {ErrStale, func() error {
			h := hdr()
			h.From, h.To, h.FromWG, h.ToWG = resp.id.Public(), ini.id.Public(), resp.ov.PublicKey(), ini.ov.PublicKey()
			_, ct := dk.EncapsulationKey().Encapsulate()
			m := &pskResp{header: h, CT: ct}
			sig, _ := resp.id.Sign(tagResp, 1, m)
			b, _ := wire.Marshal(&envelope{Resp: m, Sig: sig})
			return ini.ov.psk.handle(b, resp.ov.Address())
		}},
	} {
		if err := c.call(); !errors.Is(err, c.err) {
			t.Errorf("%s: got %v, want %v", name, err, c.err)
		}
	}
	if got := resp.ov.Rotations(ini.ov.PublicKey()); got != before+1 {
		t.Fatalf("refused messages installed %d keys", got-before-1)
	}
}
