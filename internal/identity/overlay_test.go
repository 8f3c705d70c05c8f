package identity

import (
	"bytes"
	"encoding/hex"
	"testing"
)

// The overlay key is part of the format: every peer's WireGuard
// configuration and overlay address are computed from it.
func TestOverlayKeyGolden(t *testing.T) {
	t.Parallel()
	type vector struct {
		Seed, OverlayPrivate, OverlayPublic string
	}
	var out []vector
	for _, b := range []byte{0, 7, 0xff} {
		seed := bytes.Repeat([]byte{b}, 32)
		k, err := NewPrivateKey(seed)
		if err != nil {
			t.Fatal(err)
		}
		priv, err := k.OverlayKey()
		if err != nil {
			t.Fatal(err)
		}
		pub, err := k.OverlayPublicKey()
		if err != nil {
			t.Fatal(err)
		}
		if priv[0]&7 != 0 || priv[31]&128 != 0 || priv[31]&64 == 0 {
			t.Fatalf("overlay key not clamped: %x", priv)
		}
		out = append(out, vector{hex.EncodeToString(seed), hex.EncodeToString(priv[:]), hex.EncodeToString(pub[:])})
	}
	if out[0].OverlayPublic == out[1].OverlayPublic {
		t.Fatal("two identities derived one overlay key")
	}
	checkGolden(t, "overlay_key.json", out)
}

func TestOverlayKeyZero(t *testing.T) {
	t.Parallel()
	if _, err := (PrivateKey{}).OverlayKey(); err == nil {
		t.Fatal("a zero identity derived an overlay key")
	}
	if _, err := (PrivateKey{}).OverlayPublicKey(); err == nil {
		t.Fatal("a zero identity derived an overlay public key")
	}
}
