// Package identity holds zerogrid's keys: the root key a person derives from
// a 24-word mnemonic, device keys the root certifies, node keys, and the
// hybrid post-quantum sealing keys that secrets are encrypted to.
//
// Keys have typed text forms (bech32 with a prefix naming the kind: zgpub1…
// for a person's signing key, zgnode1… for a node's, zgseal1… for a sealing
// key), compare in constant time, and never print secret material: a
// PrivateKey's String and Format show only its public half.
//
// Every signature is made over a wire.Digest: a domain tag and version in
// front of the canonical CBOR encoding of the signed value. There is no API
// to sign raw bytes.
package identity

import (
	"crypto/ed25519"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"io"

	"github.com/btcsuite/btcd/btcutil/bech32"

	"github.com/zerogrid/zerogrid/internal/wire"
)

// Text prefixes (bech32 human-readable parts) of the typed key forms.
const (
	PrefixUser = "zgpub"  // a twin's root or device signing key
	PrefixNode = "zgnode" // a node's signing key
	PrefixSeal = "zgseal" // an HPKE MLKEM768X25519 public key
)

// Errors returned when parsing keys and checking signatures.
var (
	ErrBadKeyText  = errors.New("identity: malformed key text")
	ErrWrongPrefix = errors.New("identity: key has the wrong prefix")
	ErrBadKeyLen   = errors.New("identity: key has the wrong length")
	ErrBadSig      = errors.New("identity: signature does not verify")
)

// PublicKey is an ed25519 public key. Its zero value is "no key" and never
// verifies anything. It encodes to CBOR as a 32-byte string.
type PublicKey [ed25519.PublicKeySize]byte

// Signature is an ed25519 signature over a wire.Digest.
type Signature [ed25519.SignatureSize]byte

// IsZero reports whether k is the zero ("no key") value.
func (k PublicKey) IsZero() bool { return k == PublicKey{} }

// Equal compares two keys in constant time.
func (k PublicKey) Equal(o PublicKey) bool { return subtle.ConstantTimeCompare(k[:], o[:]) == 1 }

// String is the user text form, zgpub1….
func (k PublicKey) String() string { return k.Text(PrefixUser) }

// NodeString is the node text form, zgnode1….
func (k PublicKey) NodeString() string { return k.Text(PrefixNode) }

// Text encodes k as bech32 with the given prefix.
func (k PublicKey) Text(prefix string) string { return encodeText(prefix, k[:]) }

// Verify checks sig over wire.Digest(tag, version, v). It returns ErrBadSig
// when the signature is wrong and another error when v cannot be encoded.
func (k PublicKey) Verify(tag string, version uint16, v any, sig Signature) error {
	if k.IsZero() {
		return ErrBadSig
	}
	d, err := wire.Digest(tag, version, v)
	if err != nil {
		return err
	}
	if !ed25519.Verify(k[:], d[:], sig[:]) {
		return ErrBadSig
	}
	return nil
}

// ParsePublicKey parses a zgpub1… text form.
func ParsePublicKey(s string) (PublicKey, error) { return parseKeyText(s, PrefixUser) }

// ParseNodeKey parses a zgnode1… text form.
func ParseNodeKey(s string) (PublicKey, error) { return parseKeyText(s, PrefixNode) }

func parseKeyText(s, prefix string) (PublicKey, error) {
	var k PublicKey
	b, err := decodeText(s, prefix)
	if err != nil {
		return k, err
	}
	if len(b) != len(k) {
		return k, fmt.Errorf("%w: %d bytes, want %d", ErrBadKeyLen, len(b), len(k))
	}
	copy(k[:], b)
	return k, nil
}

func encodeText(prefix string, b []byte) string {
	conv, err := bech32.ConvertBits(b, 8, 5, true)
	if err != nil {
		panic(err) // 8→5 with padding cannot fail
	}
	s, err := bech32.Encode(prefix, conv)
	if err != nil {
		panic(err) // fixed valid prefix
	}
	return s
}

func decodeText(s, prefix string) ([]byte, error) {
	hrp, data, err := bech32.DecodeNoLimit(s)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKeyText, err)
	}
	if hrp != prefix {
		return nil, fmt.Errorf("%w: got %q, want %q", ErrWrongPrefix, hrp+"1…", prefix+"1…")
	}
	b, err := bech32.ConvertBits(data, 5, 8, false)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadKeyText, err)
	}
	return b, nil
}

// PrivateKey is an ed25519 signing key. It never prints its secret half.
type PrivateKey struct {
	k ed25519.PrivateKey
}

// NewPrivateKey derives a key from a 32-byte seed.
func NewPrivateKey(seed []byte) (PrivateKey, error) {
	if len(seed) != ed25519.SeedSize {
		return PrivateKey{}, fmt.Errorf("%w: seed is %d bytes, want %d", ErrBadKeyLen, len(seed), ed25519.SeedSize)
	}
	return PrivateKey{k: ed25519.NewKeyFromSeed(seed)}, nil
}

// GenerateKey makes a new random key from rand.
func GenerateKey(rand io.Reader) (PrivateKey, error) {
	seed := make([]byte, ed25519.SeedSize)
	if _, err := io.ReadFull(rand, seed); err != nil {
		return PrivateKey{}, fmt.Errorf("identity: read randomness: %w", err)
	}
	return NewPrivateKey(seed)
}

// Public returns the public half.
func (p PrivateKey) Public() PublicKey {
	var k PublicKey
	if p.k != nil {
		copy(k[:], p.k[ed25519.SeedSize:])
	}
	return k
}

// Seed returns the 32-byte secret seed. Only key files should call it.
func (p PrivateKey) Seed() []byte { return append([]byte(nil), p.k.Seed()...) }

// IsZero reports whether p holds no key.
func (p PrivateKey) IsZero() bool { return p.k == nil }

// Sign signs wire.Digest(tag, version, v).
func (p PrivateKey) Sign(tag string, version uint16, v any) (Signature, error) {
	var s Signature
	if p.k == nil {
		return s, errors.New("identity: sign with an empty key")
	}
	d, err := wire.Digest(tag, version, v)
	if err != nil {
		return s, err
	}
	copy(s[:], ed25519.Sign(p.k, d[:]))
	return s, nil
}

// String shows only the public half.
func (p PrivateKey) String() string { return "PrivateKey(" + p.Public().String() + ")" }

// GoString shows only the public half.
func (p PrivateKey) GoString() string { return p.String() }

// Format makes every fmt verb print only the public half.
func (p PrivateKey) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, p.String()) }

// MarshalText gives the zgpub1… form (JSON uses it; CBOR does not).
func (k PublicKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText parses a zgpub1… or zgnode1… form.
func (k *PublicKey) UnmarshalText(b []byte) error {
	p, err := ParsePublicKey(string(b))
	if err != nil {
		if p, err = ParseNodeKey(string(b)); err != nil {
			return err
		}
	}
	*k = p
	return nil
}

// MarshalText gives the signature in hex (JSON uses it; CBOR does not).
func (s Signature) MarshalText() ([]byte, error) {
	return []byte(hex.EncodeToString(s[:])), nil
}

// UnmarshalText parses a hex signature.
func (s *Signature) UnmarshalText(b []byte) error {
	if hex.DecodedLen(len(b)) != len(s) {
		return fmt.Errorf("%w: signature is %d hex digits, want %d", ErrBadKeyLen, len(b), 2*len(s))
	}
	_, err := hex.Decode(s[:], b)
	return err
}
