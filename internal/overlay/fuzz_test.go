package overlay

import (
	"bytes"
	"crypto/mlkem"
	"errors"
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
