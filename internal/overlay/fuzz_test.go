package overlay

import (
	"bytes"
	"crypto/mlkem"
	"errors"
	"net/netip"
	"testing"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/wire"
)

func sampleEnvelopes(t testing.TB) [][]byte {
	dk, _ := mlkem.GenerateKey768()
	id, _ := identity.NewPrivateKey(bytes.Repeat([]byte{1}, 32))
	h := header{From: id.Public(), Epoch: 5, Expires: 99}
	_, ct := dk.EncapsulationKey().Encapsulate()
	var out [][]byte
	for _, m := range []any{
		&pskInit{header: h, EK: dk.EncapsulationKey().Bytes()},
		&pskResp{header: h, CT: ct},
		&pskConfirm{header: h, RespHash: [32]byte{1}},
		&pskAck{header: h, RespHash: [32]byte{2}},
	} {
		b, err := seal(id, m)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, b)
	}
	return out
}

// FuzzDecodeEnvelope: any datagram decodes or is refused with ErrMessage,
// never a panic, and what decodes is exactly one well-sized message whose
// encoding is the input (canonical).
func FuzzDecodeEnvelope(f *testing.F) {
	for _, b := range sampleEnvelopes(f) {
		f.Add(b)
		f.Add(b[:len(b)/2])
	}
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := decodeEnvelope(b)
		if err != nil {
			if !errors.Is(err, ErrMessage) {
				t.Fatalf("error %v does not wrap ErrMessage", err)
			}
			return
		}
		n := 0
		for _, present := range []bool{e.Init != nil, e.Resp != nil, e.Confirm != nil, e.Ack != nil} {
			if present {
				n++
			}
		}
		if n != 1 {
			t.Fatalf("decoded an envelope with %d messages", n)
		}
		again, err := wire.Marshal(e)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("decoded bytes are not canonical: %v", err)
		}
	})
}

func TestDecodeEnvelopeRefuses(t *testing.T) {
	t.Parallel()
	good := sampleEnvelopes(t)
	for _, b := range good {
		if _, err := decodeEnvelope(b); err != nil {
			t.Fatalf("good envelope refused: %v", err)
		}
	}
	var e envelope
	_ = wire.Unmarshal(good[0], &e)
	e.Init.EK = e.Init.EK[:100]
	short, _ := wire.Marshal(&e)
	both, _ := wire.Marshal(&envelope{Init: &pskInit{EK: make([]byte, mlkem.EncapsulationKeySize768)}, Resp: &pskResp{CT: make([]byte, mlkem.CiphertextSize768)}})
	confirmAck, _ := wire.Marshal(&envelope{Confirm: &pskConfirm{}, Ack: &pskAck{}})
	for name, b := range map[string][]byte{"short key": short, "init and resp": both, "confirm and ack": confirmAck,
		"empty": {0xa0}, "huge": make([]byte, maxMessage+1)} {
		if _, err := decodeEnvelope(b); !errors.Is(err, ErrMessage) {
			t.Errorf("%s: %v, want ErrMessage", name, err)
		}
	}
}

// FuzzGateDrop: the gate reads any packet (from the kernel or from a
// peer) without panicking, and never drops one that is not IPv6.
func FuzzGateDrop(f *testing.F) {
	self := netip.MustParseAddr("fd00:1:2::1")
	peer := netip.MustParseAddr("fd00:1:2::2")
	b := &blockSet{peers: []blockedPeer{{addr: peer, prefixes: []netip.Prefix{netip.PrefixFrom(peer, 128), netip.MustParsePrefix("fd4a::/64")}}}}
	f.Add(udp6(netip.AddrPortFrom(self, ControlPort), netip.AddrPortFrom(peer, ControlPort), []byte("x")), true)
	f.Add(udp6(netip.AddrPortFrom(peer, 7), netip.AddrPortFrom(self, 7), nil), false)
	f.Add([]byte{0x45, 0, 0, 20}, true)
	f.Fuzz(func(t *testing.T, p []byte, outbound bool) {
		if b.drop(p, self, outbound) && (len(p) == 0 || p[0]>>4 != 6) {
			t.Fatal("dropped a packet that is not IPv6")
		}
	})
}

// The gate drops traffic with a blocked peer (its address and its
// networks, both ways) except the key exchange, and passes the rest.
func TestGateDrop(t *testing.T) {
	t.Parallel()
	self := netip.MustParseAddr("fd00:1:2::1")
	peer := netip.MustParseAddr("fd00:1:2::2")
	other := netip.MustParseAddr("fd00:1:2::3")
	inNet := netip.MustParseAddr("fd4a::9")
	b := &blockSet{peers: []blockedPeer{{addr: peer, prefixes: []netip.Prefix{netip.PrefixFrom(peer, 128), netip.MustParsePrefix("fd4a::/64")}}}}
	ap := netip.AddrPortFrom
	for _, c := range []struct {
		name     string
		p        []byte
		outbound bool
		drop     bool
	}{
		{"exchange out", udp6(ap(self, ControlPort), ap(peer, ControlPort), nil), true, false},
		{"exchange in", udp6(ap(peer, ControlPort), ap(self, ControlPort), nil), false, false},
		{"other port out", udp6(ap(self, ControlPort), ap(peer, 80), nil), true, true},
		{"other port in", udp6(ap(peer, 80), ap(self, ControlPort), nil), false, true},
		{"exchange port to the peer's network", udp6(ap(self, ControlPort), ap(inNet, ControlPort), nil), true, true},
		{"from the peer's network", udp6(ap(inNet, 7), ap(self, 7), nil), false, true},
		{"to the peer's network", udp6(ap(self, 7), ap(inNet, 7), nil), true, true},
		{"another peer out", udp6(ap(self, 7), ap(other, 7), nil), true, false},
		{"another peer in", udp6(ap(other, 7), ap(self, 7), nil), false, false},
		{"IPv4", []byte{0x45, 0, 0, 20, 0, 0, 0, 0, 64, 17, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2}, true, false},
	} {
		if got := b.drop(c.p, self, c.outbound); got != c.drop {
			t.Errorf("%s: drop %v, want %v", c.name, got, c.drop)
		}
	}
}
