package tunnel

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/zerogrid/zerogrid/internal/wire"
)

func frame(t testing.TB, v any) []byte {
	var b bytes.Buffer
	if err := writeFrame(&b, v); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

// FuzzHello: the gateway decodes a hello from an authenticated but
// untrusted backend.
func FuzzHello(f *testing.F) {
	k := newKey(f)
	h := hello{Body: helloBody{Version: Version, Key: k.Public(), Routes: []RouteDecl{{Name: "web"}}}}
	f.Add(frame(f, h))
	f.Add(frame(f, challenge{Version: Version}))
	f.Add([]byte{0, 0, 0, 1, 0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var h hello
		if err := readFrame(bytes.NewReader(b), maxFrame, &h); err != nil {
			return
		}
		if h.Body.check() == nil {
			if len(h.Body.Routes) == 0 || len(h.Body.Routes) > maxRoutes {
				t.Fatalf("check passed %d routes", len(h.Body.Routes))
			}
		}
		_ = h.Body.Key.Verify(helloTag, Version, h.Body, h.Sig)
		roundTripCanonical(t, h)
	})
}

// FuzzStreamHeader: the backend decodes a header the gateway wrote.
func FuzzStreamHeader(f *testing.F) {
	f.Add(frame(f, streamHeader{Version: Version, Name: "web", Mode: ModePassthrough, Client: []byte{4, 1, 2, 3, 4, 0, 80}}))
	f.Add(frame(f, streamHeader{Version: Version, Name: "web"}))
	f.Add([]byte{0, 0, 1, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ap, err := decodeStreamHeader(bytes.NewReader(b))
		if err != nil {
			return
		}
		if n := binary.BigEndian.Uint32(b); n > maxHeaderLen {
			t.Fatalf("accepted a %d-byte header", n)
		}
		if h.Name == "" || len(h.Name) > maxNameLen || h.Mode > ModePassthrough {
			t.Fatalf("accepted header %+v", h)
		}
		if len(h.Client) > 0 && !ap.IsValid() {
			t.Fatalf("client bytes %x gave no address", h.Client)
		}
	})
}

// FuzzControlFrames: challenge, welcome and heartbeat frames, decoded by
// either side from the other.
func FuzzControlFrames(f *testing.F) {
	f.Add(frame(f, challenge{Version: Version}))
	f.Add(frame(f, welcome{Verdicts: []verdict{{Name: "web", OK: true}, {Name: "x", Reason: "no"}}}))
	f.Add(frame(f, ctrlFrame{Type: framePing, Seq: 7}))
	f.Add(frame(f, preamble{Version: Version}))
	f.Fuzz(func(t *testing.T, b []byte) {
		var c challenge
		if readFrame(bytes.NewReader(b), maxFrame, &c) == nil {
			roundTripCanonical(t, c)
		}
		var w welcome
		if readFrame(bytes.NewReader(b), maxFrame, &w) == nil {
			roundTripCanonical(t, w)
		}
		var cf ctrlFrame
		if readFrame(bytes.NewReader(b), maxFrame, &cf) == nil {
			roundTripCanonical(t, cf)
		}
		var p preamble
		_ = readFrame(bytes.NewReader(b), maxFrame, &p)
	})
}

// roundTripCanonical: whatever decodes re-encodes without error.
func roundTripCanonical(t *testing.T, v any) {
	if _, err := wire.Marshal(v); err != nil {
		t.Fatalf("decoded value does not re-encode: %v", err)
	}
}
