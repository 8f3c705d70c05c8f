package identity

import (
	"bytes"
	"encoding/hex"
	"errors"
	"strings"
	"testing"

	"github.com/zerogrid/zerogrid/internal/wire"
)

func testKey(t testing.TB, fill byte) PrivateKey {
	t.Helper()
	k, err := NewPrivateKey(bytes.Repeat([]byte{fill}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

const certNow = 1_700_000_000

func testCert(t testing.TB) (PrivateKey, PrivateKey, DeviceCert) {
	root, dev := testKey(t, 1), testKey(t, 2)
	return root, dev, DeviceCert{Twin: 42, Device: dev.Public(), Name: "laptop", Created: certNow, Expires: certNow + 86400}
}

func TestCertifyAndVerify(t *testing.T) {
	t.Parallel()
	root, _, c := testCert(t)
	other := testKey(t, 3)
	sc, err := root.CertifyDevice(c)
	if err != nil {
		t.Fatal(err)
	}
	mutate := func(f func(*SignedDeviceCert)) SignedDeviceCert {
		s := sc
		f(&s)
		return s
	}
	tests := []struct {
		name string
		sc   SignedDeviceCert
		root PublicKey
		now  int64
		want error
	}{
		{"valid", sc, root.Public(), certNow + 10, nil},
		{"valid within clock skew", sc, root.Public(), certNow - CertClockSkew, nil},
		{"other root", sc, other.Public(), certNow, ErrCertRoot},
		{"zero root", sc, PublicKey{}, certNow, ErrCertRoot},
		{"root field swapped", mutate(func(s *SignedDeviceCert) { s.Root = other.Public() }), root.Public(), certNow, ErrCertRoot},
		{"twin changed", mutate(func(s *SignedDeviceCert) { s.Cert.Twin++ }), root.Public(), certNow, ErrBadSig},
		{"device changed", mutate(func(s *SignedDeviceCert) { s.Cert.Device = other.Public() }), root.Public(), certNow, ErrBadSig},
		{"name changed", mutate(func(s *SignedDeviceCert) { s.Cert.Name = "phone" }), root.Public(), certNow, ErrBadSig},
		{"expiry removed", mutate(func(s *SignedDeviceCert) { s.Cert.Expires = 0 }), root.Public(), certNow, ErrBadSig},
		{"sig flipped", mutate(func(s *SignedDeviceCert) { s.Sig[0] ^= 1 }), root.Public(), certNow, ErrBadSig},
		{"expired", sc, root.Public(), certNow + 86400, ErrCertExpired},
		{"not yet valid", sc, root.Public(), certNow - CertClockSkew - 1, ErrCertNotYetValid},
		{"invalid fields", mutate(func(s *SignedDeviceCert) { s.Cert.Name = "" }), root.Public(), certNow, ErrBadCert},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.sc.Verify(tc.root, tc.now)
			if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCertifyRefuses(t *testing.T) {
	t.Parallel()
	root, _, good := testCert(t)
	tests := []struct {
		name string
		edit func(*DeviceCert)
		msg  string
	}{
		{"no device", func(c *DeviceCert) { c.Device = PublicKey{} }, "no device key"},
		{"root as device", func(c *DeviceCert) { c.Device = root.Public() }, "its own device key"},
		{"no created", func(c *DeviceCert) { c.Created = 0 }, "created"},
		{"expires before created", func(c *DeviceCert) { c.Expires = c.Created }, "expires"},
		{"negative expiry", func(c *DeviceCert) { c.Expires = -1 }, "expires"},
		{"empty name", func(c *DeviceCert) { c.Name = "" }, "empty device name"},
		{"long name", func(c *DeviceCert) { c.Name = strings.Repeat("a", MaxDeviceNameLen+1) }, "at most"},
		{"control char", func(c *DeviceCert) { c.Name = "lap\x1b[2Jtop" }, "unprintable"},
		{"bad utf-8", func(c *DeviceCert) { c.Name = "\xff" }, "UTF-8"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := good
			tc.edit(&c)
			_, err := root.CertifyDevice(c)
			if !errors.Is(err, ErrBadCert) || !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("got %v, want ErrBadCert saying %q", err, tc.msg)
			}
		})
	}
	if _, err := (PrivateKey{}).CertifyDevice(good); err == nil {
		t.Fatal("empty root key signed")
	}
}

type certVector struct {
	Root   string `json:"root"`
	Device string `json:"device"`
	CBOR   string `json:"signed_cert_cbor"`
	Digest string `json:"digest"`
	Sig    string `json:"sig"`
}

// TestDeviceCertGolden pins the certificate's encoding, digest and
// (deterministic ed25519) signature.
func TestDeviceCertGolden(t *testing.T) {
	t.Parallel()
	root, dev, c := testCert(t)
	sc, err := root.CertifyDevice(c)
	if err != nil {
		t.Fatal(err)
	}
	b, err := wire.Marshal(sc)
	if err != nil {
		t.Fatal(err)
	}
	d, err := wire.Digest(TagDeviceCert, DeviceCertVersion, c)
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "device_cert.json", certVector{
		Root:   root.Public().String(),
		Device: dev.Public().String(),
		CBOR:   hex.EncodeToString(b),
		Digest: hex.EncodeToString(d[:]),
		Sig:    hex.EncodeToString(sc.Sig[:]),
	})
	var back SignedDeviceCert
	if err := wire.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back != sc {
		t.Fatal("CBOR round trip changed the certificate")
	}
}

func FuzzVerifyDeviceCert(f *testing.F) {
	root, _, c := testCert(f)
	sc, err := root.CertifyDevice(c)
	if err != nil {
		f.Fatal(err)
	}
	valid, err := wire.Marshal(sc)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(valid)
	f.Add(valid[:len(valid)-1])
	f.Add([]byte{0xa0})
	f.Fuzz(func(t *testing.T, b []byte) {
		var s SignedDeviceCert
		if wire.Unmarshal(b, &s) != nil {
			return
		}
		if s.Verify(root.Public(), certNow) == nil && !bytes.Equal(b, valid) {
			t.Fatalf("forged certificate verifies: %x", b)
		}
	})
}
