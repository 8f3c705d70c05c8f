package gatewayname

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/spec"
)

func testHandover(t testing.TB) *handover {
	k, _ := identity.GenerateKey(rand.Reader)
	return &handover{Version: handoverVersion, Seed: k.Seed(), UID: 65534, GID: 65534, Route: handoverRoute{
		Name: "shop", Mode: spec.GatewayModeHTTP, Target: "10.250.0.2:8080",
		Gateways: []handoverGateway{{Addr: "gw.example.org:4443", Key: k.Public()}},
	}}
}

func TestHandoverRoundTrip(t *testing.T) {
	t.Parallel()
	h := testHandover(t)
	var b bytes.Buffer
	if err := writeHandover(&b, h); err != nil {
		t.Fatal(err)
	}
	got, err := readHandover(&b)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got.Seed, h.Seed) || got.UID != h.UID || got.Route.Gateways[0] != h.Route.Gateways[0] || got.Route.Target != h.Route.Target {
		t.Fatalf("read %+v, wrote %+v", got, h)
	}
	for name, mut := range map[string]func(*handover){
		"no seed":     func(h *handover) { h.Seed = nil },
		"no gateway":  func(h *handover) { h.Route.Gateways = nil },
		"bad mode":    func(h *handover) { h.Route.Mode = "ftp" },
		"no target":   func(h *handover) { h.Route.Target = "" },
		"new version": func(h *handover) { h.Version = 2 },
	} {
		h := testHandover(t)
		mut(h)
		var b bytes.Buffer
		if err := writeHandover(&b, h); err != nil {
			t.Fatal(err)
		}
		if _, err := readHandover(&b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestHealthRecord(t *testing.T) {
	t.Parallel()
	h := healthRecord{PID: 42, Time: 1700000000, Connected: 1, Total: 2, Problem: "gw: refused"}
	b, err := encodeHealth(h)
	if err != nil || len(b) != healthSize {
		t.Fatalf("%d bytes, %v", len(b), err)
	}
	got, ok, err := decodeHealth(b)
	if err != nil || !ok || got != h {
		t.Fatalf("decoded %+v %v %v", got, ok, err)
	}
	if _, ok, err := decodeHealth(make([]byte, healthSize)); ok || err != nil {
		t.Fatalf("empty file: %v %v, want nothing yet", ok, err)
	}
	torn := bytes.Clone(b)
	torn[healthHead+3] ^= 1
	if _, _, err := decodeHealth(torn); !errors.Is(err, errTorn) {
		t.Fatalf("flipped byte: %v, want errTorn", err)
	}
	bad, _ := encodeHealth(healthRecord{Connected: 3, Total: 2})
	if _, _, err := decodeHealth(bad); err == nil {
		t.Fatal("3 of 2 gateways accepted")
	}
}

// FuzzDecodeHealth: the agent reads what a less privileged process wrote.
func FuzzDecodeHealth(f *testing.F) {
	b, _ := encodeHealth(healthRecord{PID: 7, Time: 1, Connected: 1, Total: 1})
	f.Add(b)
	f.Add(make([]byte, healthSize))
	f.Add([]byte("zgth\x01\x00\x00\x00\xff\xff\xff\xff"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, ok, err := decodeHealth(b)
		if ok && (err != nil || h.Connected > h.Total || len(h.Problem) > maxProblemLen) {
			t.Fatalf("accepted %+v (%v)", h, err)
		}
	})
}

func FuzzReadHandover(f *testing.F) {
	var b bytes.Buffer
	writeHandover(&b, testHandover(f))
	f.Add(b.Bytes())
	f.Add([]byte{0, 0, 0, 1, 0xa0})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		if h, err := readHandover(bytes.NewReader(b)); err == nil && h.check() != nil {
			t.Fatalf("accepted %+v", h)
		}
	})
}
