package identity

import (
	"crypto/ecdh"
	"crypto/hkdf"
	"crypto/sha256"
	"errors"
)

// overlayKeyInfo labels the derivation of a node's overlay (WireGuard)
// key from its identity; see docs/formats/overlay.md.
const overlayKeyInfo = "zerogrid overlay wireguard x25519 v1"

// OverlayKey returns the X25519 private key of the node's overlay
// (WireGuard) interface: HKDF-SHA256 of the ed25519 seed (no salt, info
// "zerogrid overlay wireguard x25519 v1"), clamped as X25519 wants. The
// identity is the only secret a node keeps; this key is a function of it.
func (p PrivateKey) OverlayKey() ([32]byte, error) {
	var k [32]byte
	if p.IsZero() {
		return k, errors.New("identity: no key to derive the overlay key from")
	}
	seed := p.Seed()
	defer clear(seed)
	b, err := hkdf.Key(sha256.New, seed, nil, overlayKeyInfo, 32)
	if err != nil {
		return k, err
	}
	b[0] &= 248
	b[31] = b[31]&127 | 64
	copy(k[:], b)
	clear(b)
	return k, nil
}

// OverlayPublicKey returns the X25519 public key of OverlayKey: the
// WireGuard public key the node announces in its ledger record.
func (p PrivateKey) OverlayPublicKey() ([32]byte, error) {
	var pub [32]byte
	k, err := p.OverlayKey()
	if err != nil {
		return pub, err
	}
	defer clear(k[:])
	return x25519Public(k)
}

// x25519Public is the X25519 public key of private key k.
func x25519Public(k [32]byte) ([32]byte, error) {
	var pub [32]byte
	sk, err := ecdh.X25519().NewPrivateKey(k[:])
	if err != nil {
		return pub, err
	}
	copy(pub[:], sk.PublicKey().Bytes())
	return pub, nil
}
