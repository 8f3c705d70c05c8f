package overlay

import (
	"encoding/hex"
	"fmt"
	"net/netip"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/wire"
)

// Key is a WireGuard (X25519) key.
type Key [32]byte

// String is the key in hex, as WireGuard's configuration protocol takes it.
func (k Key) String() string { return hex.EncodeToString(k[:]) }

// DeriveKey returns the WireGuard private and public keys of an identity
// (identity.PrivateKey.OverlayKey: HKDF-SHA256 of its ed25519 seed).
func DeriveKey(id identity.PrivateKey) (priv, pub Key, err error) {
	if priv, err = id.OverlayKey(); err != nil {
		return Key{}, Key{}, fmt.Errorf("overlay: %w", err)
	}
	if pub, err = id.OverlayPublicKey(); err != nil {
		return Key{}, Key{}, fmt.Errorf("overlay: %w", err)
	}
	return priv, pub, nil
}

// PublicKey returns the WireGuard public key of an identity.
func PublicKey(id identity.PrivateKey) (Key, error) {
	_, pub, err := DeriveKey(id)
	return pub, err
}

// Prefix returns the overlay's ULA /48 for a chain: fd00::/8 and 40 bits
// of a digest of the chain id.
func Prefix(chain string) (netip.Prefix, error) {
	d, err := wire.Digest("overlay-prefix", 1, chain)
	if err != nil {
		return netip.Prefix{}, err
	}
	var b [16]byte
	b[0] = 0xfd
	copy(b[1:6], d[:5])
	return netip.PrefixFrom(netip.AddrFrom16(b), 48), nil
}

// Addr returns the overlay address of a WireGuard public key: the /48 and
// 80 bits of a digest of the key.
func Addr(prefix netip.Prefix, pub Key) (netip.Addr, error) {
	if prefix.Bits() != 48 || !prefix.Addr().Is6() {
		return netip.Addr{}, fmt.Errorf("overlay: prefix %s is not an IPv6 /48", prefix)
	}
	d, err := wire.Digest("overlay-node", 1, pub[:])
	if err != nil {
		return netip.Addr{}, err
	}
	b := prefix.Masked().Addr().As16()
	copy(b[6:], d[:10])
	return netip.AddrFrom16(b), nil
}

// Owns reports whether addr is the overlay address of pub.
func Owns(prefix netip.Prefix, addr netip.Addr, pub Key) bool {
	a, err := Addr(prefix, pub)
	return err == nil && a == addr
}
