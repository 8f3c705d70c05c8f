package identity

import (
	"crypto/hpke"
	"crypto/subtle"
	"fmt"
	"io"

	"github.com/zerogrid/zerogrid/internal/wire"
)

// Sealing: HPKE (RFC 9180) base mode with the hybrid post-quantum KEM
// ML-KEM-768 + X25519 (hpke.MLKEM768X25519), HKDF-SHA256 and AES-256-GCM.
// A sealed message is enc || ciphertext, as hpke.Seal returns it.
//
// The HPKE info is sealInfoPrefix followed by the caller's context, so a
// zerogrid sealing key never opens a message made for another protocol, and
// the caller's context binds the message to its purpose.
const sealInfoPrefix = "zerogrid/seal/v1\x00"

// Sizes of the sealing suite.
const (
	SealPublicKeySize = 1184 + 32      // ML-KEM-768 encapsulation key || X25519 public key
	SealOverhead      = 1088 + 32 + 16 // enc (ML-KEM-768 ciphertext || X25519 share) + GCM tag
	sealIKMLen        = 32
)

func sealSuite() (hpke.KEM, hpke.KDF, hpke.AEAD) {
	return hpke.MLKEM768X25519(), hpke.HKDFSHA256(), hpke.AES256GCM()
}

func sealInfo(info []byte) []byte {
	return append([]byte(sealInfoPrefix), info...)
}

// SealPublicKey is a hybrid HPKE public key that secrets are sealed to. The
// zero value is "no key". It encodes to CBOR as a byte string (empty for the
// zero value) and as text as zgseal1…; both decoders reject bytes that are
// not a valid ML-KEM-768+X25519 public key.
type SealPublicKey struct {
	b []byte
}

// NewSealPublicKey checks and wraps the serialized HPKE public key b.
func NewSealPublicKey(b []byte) (SealPublicKey, error) {
	if len(b) != SealPublicKeySize {
		return SealPublicKey{}, fmt.Errorf("%w: %d bytes, want %d", ErrBadSealKey, len(b), SealPublicKeySize)
	}
	kem, _, _ := sealSuite()
	if _, err := kem.NewPublicKey(b); err != nil {
		return SealPublicKey{}, fmt.Errorf("%w: %v", ErrBadSealKey, err)
	}
	return SealPublicKey{b: append([]byte(nil), b...)}, nil
}

// ParseSealPublicKey parses a zgseal1… text form.
func ParseSealPublicKey(s string) (SealPublicKey, error) {
	b, err := decodeText(s, PrefixSeal)
	if err != nil {
		return SealPublicKey{}, err
	}
	return NewSealPublicKey(b)
}

// Bytes returns a copy of the serialized HPKE public key (nil for the zero
// value).
func (k SealPublicKey) Bytes() []byte { return append([]byte(nil), k.b...) }

// IsZero reports whether k is the zero ("no key") value.
func (k SealPublicKey) IsZero() bool { return len(k.b) == 0 }

// Equal compares two keys in constant time.
func (k SealPublicKey) Equal(o SealPublicKey) bool { return subtle.ConstantTimeCompare(k.b, o.b) == 1 }

// String is the text form zgseal1…, or "zgseal(none)" for the zero value.
func (k SealPublicKey) String() string {
	if k.IsZero() {
		return PrefixSeal + "(none)"
	}
	return encodeText(PrefixSeal, k.b)
}

// MarshalText implements encoding.TextMarshaler (zgseal1…).
func (k SealPublicKey) MarshalText() ([]byte, error) {
	if k.IsZero() {
		return nil, fmt.Errorf("%w: no key", ErrBadSealKey)
	}
	return []byte(k.String()), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *SealPublicKey) UnmarshalText(text []byte) error {
	p, err := ParseSealPublicKey(string(text))
	if err != nil {
		return err
	}
	*k = p
	return nil
}

// MarshalCBOR encodes k as a byte string.
func (k SealPublicKey) MarshalCBOR() ([]byte, error) {
	b := k.b
	if b == nil {
		b = []byte{}
	}
	return wire.Marshal(b)
}

// UnmarshalCBOR decodes a byte string and checks that it is a valid key; an
// empty byte string is the zero value.
func (k *SealPublicKey) UnmarshalCBOR(data []byte) error {
	var b []byte
	if err := wire.Unmarshal(data, &b); err != nil {
		return err
	}
	if len(b) == 0 {
		*k = SealPublicKey{}
		return nil
	}
	p, err := NewSealPublicKey(b)
	if err != nil {
		return err
	}
	*k = p
	return nil
}

// Seal encrypts plaintext to pub. info is the context the ciphertext is
// bound to and must not be empty: callers bind a sealed secret to its
// purpose (for a contract secret, e.g. the canonical encoding of owner
// twin, node, contract id, secret name and a nonce), so that a ciphertext
// cannot be replayed into another contract or to another node. Open must be
// given the same info.
func Seal(pub SealPublicKey, info, plaintext []byte) ([]byte, error) {
	if len(info) == 0 {
		return nil, ErrNoSealContext
	}
	if pub.IsZero() {
		return nil, fmt.Errorf("%w: no key", ErrBadSealKey)
	}
	kem, kdf, aead := sealSuite()
	pk, err := kem.NewPublicKey(pub.b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadSealKey, err)
	}
	ct, err := hpke.Seal(pk, kdf, aead, sealInfo(info), plaintext)
	if err != nil {
		return nil, fmt.Errorf("identity: seal: %w", err)
	}
	return ct, nil
}

// SealPrivateKey is the secret half of a sealing key. It never prints its
// secret.
type SealPrivateKey struct {
	k hpke.PrivateKey
}

// DeriveSealKey derives a sealing key deterministically from at least 32
// bytes of secret input keying material (HPKE DeriveKeyPair).
func DeriveSealKey(ikm []byte) (SealPrivateKey, error) {
	if len(ikm) < sealIKMLen {
		return SealPrivateKey{}, fmt.Errorf("%w: ikm is %d bytes, want at least %d", ErrBadSealKey, len(ikm), sealIKMLen)
	}
	kem, _, _ := sealSuite()
	k, err := kem.DeriveKeyPair(ikm)
	if err != nil {
		return SealPrivateKey{}, fmt.Errorf("%w: %v", ErrBadSealKey, err)
	}
	return SealPrivateKey{k: k}, nil
}

// GenerateSealKey makes a random sealing key (from crypto/rand, which HPKE
// uses internally).
func GenerateSealKey() (SealPrivateKey, error) {
	kem, _, _ := sealSuite()
	k, err := kem.GenerateKey()
	if err != nil {
		return SealPrivateKey{}, fmt.Errorf("identity: generate sealing key: %w", err)
	}
	return SealPrivateKey{k: k}, nil
}

// SealKey derives the sealing key that belongs to an ed25519 key, so that a
// node with one key file has both a signing and a sealing key:
// DeriveSealKey(HKDF-SHA256(seed, salt="", info="zerogrid/seal-key/v1", 32)).
func (p PrivateKey) SealKey() (SealPrivateKey, error) {
	if p.IsZero() {
		return SealPrivateKey{}, fmt.Errorf("%w: derive from an empty signing key", ErrBadSealKey)
	}
	seed := p.Seed()
	defer clear(seed)
	ikm, err := deriveSecret(seed, infoSealKey, sealIKMLen)
	if err != nil {
		return SealPrivateKey{}, err
	}
	defer clear(ikm)
	return DeriveSealKey(ikm)
}

// IsZero reports whether k holds no key.
func (k SealPrivateKey) IsZero() bool { return k.k == nil }

// Public returns the public half (the zero value for an empty key).
func (k SealPrivateKey) Public() SealPublicKey {
	if k.k == nil {
		return SealPublicKey{}
	}
	return SealPublicKey{b: k.k.PublicKey().Bytes()}
}

// Open decrypts a message made by Seal for k's public key with the same
// info. Any mismatch (key, info, or a modified ciphertext) gives ErrSealOpen.
func (k SealPrivateKey) Open(info, ciphertext []byte) ([]byte, error) {
	if k.k == nil {
		return nil, fmt.Errorf("%w: no key", ErrBadSealKey)
	}
	if len(info) == 0 {
		return nil, ErrNoSealContext
	}
	_, kdf, aead := sealSuite()
	pt, err := hpke.Open(k.k, kdf, aead, sealInfo(info), ciphertext)
	if err != nil {
		return nil, ErrSealOpen
	}
	return pt, nil
}

// String shows only a prefix of the public key's text form.
func (k SealPrivateKey) String() string {
	s := k.Public().String()
	if len(s) > 24 {
		s = s[:24] + "…"
	}
	return "SealPrivateKey(" + s + ")"
}

// GoString shows only a prefix of the public key.
func (k SealPrivateKey) GoString() string { return k.String() }

// Format makes every fmt verb print only a prefix of the public key.
func (k SealPrivateKey) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, k.String()) }
