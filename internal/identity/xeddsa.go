package identity

import (
	"crypto/ed25519"
	"crypto/sha512"
	"errors"
	"fmt"
	"io"

	"filippo.io/edwards25519"
	"filippo.io/edwards25519/field"
)

// XEdDSA on Curve25519 ("XEd25519"), as specified by Signal: Trevor
// Perrin, "The XEdDSA and VXEdDSA Signature Schemes", revision 1,
// 2016-10-20, https://signal.org/docs/specifications/xeddsa/. It signs
// with an X25519 (Montgomery) private key; a signature verifies with
// standard Ed25519 verification under the Edwards point whose
// y-coordinate is the birational image of the Montgomery u-coordinate and
// whose sign bit is 0 (the signer negates its scalar when needed, so that
// point is always its public key). The field and scalar arithmetic is
// filippo.io/edwards25519's; the final check is crypto/ed25519.Verify.

// XEdDSASignatureSize is the size of an XEdDSA signature: R ‖ s.
const XEdDSASignatureSize = 64

// ErrBadXEdDSA is returned when an XEdDSA signature does not verify or
// the public key cannot carry one.
var ErrBadXEdDSA = errors.New("identity: XEdDSA signature does not verify")

// hash1Prefix is 2^256 - 1 - 1 as 32 little-endian bytes: hash_1's prefix
// (spec §2.4, hash_i(X) = hash(2^b - 1 - i ‖ X) with b = 256).
var hash1Prefix = [32]byte{0xfe, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff,
	0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff}

// xeddsaSign is xeddsa_sign(k, M, Z) (spec §2.5) with k the X25519
// private key (clamped as X25519 does) and Z 64 bytes read from rand.
func xeddsaSign(k [32]byte, msg []byte, rand io.Reader) ([XEdDSASignatureSize]byte, error) {
	var sig [XEdDSASignatureSize]byte
	var z [64]byte
	if _, err := io.ReadFull(rand, z[:]); err != nil {
		return sig, fmt.Errorf("identity: read randomness: %w", err)
	}
	defer clear(z[:])
	// calculate_key_pair (§2.3): E = kB; A = E with sign bit 0; a = ±k.
	a, err := edwards25519.NewScalar().SetBytesWithClamping(k[:])
	if err != nil {
		return sig, err
	}
	capA := new(edwards25519.Point).ScalarBaseMult(a).Bytes()
	if capA[31]&0x80 != 0 {
		a.Negate(a)
		capA[31] &= 0x7f
	}
	// r = hash_1(a ‖ M ‖ Z) (mod q); R = rB.
	h := sha512.New()
	h.Write(hash1Prefix[:])
	h.Write(a.Bytes())
	h.Write(msg)
	h.Write(z[:])
	r, err := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
	if err != nil {
		return sig, err
	}
	capR := new(edwards25519.Point).ScalarBaseMult(r).Bytes()
	// h = hash(R ‖ A ‖ M) (mod q); s = r + ha (mod q).
	h.Reset()
	h.Write(capR)
	h.Write(capA)
	h.Write(msg)
	hs, err := edwards25519.NewScalar().SetUniformBytes(h.Sum(nil))
	if err != nil {
		return sig, err
	}
	s := edwards25519.NewScalar().MultiplyAdd(hs, a, r)
	copy(sig[:32], capR)
	copy(sig[32:], s.Bytes())
	return sig, nil
}

// xeddsaVerify is xeddsa_verify(u, M, R ‖ s) (spec §2.6): u must be
// below p and its Edwards point (convert_mont, §2.2) on the curve. Beyond
// the spec, it refuses a point of small order, whose "signatures" anyone
// can make: such a u is no one's key. The rest (s below q, R = sB - hA)
// is crypto/ed25519.Verify, which is stricter than the spec's s < 2^253.
func xeddsaVerify(u [32]byte, msg, sig []byte) error {
	if len(sig) != XEdDSASignatureSize {
		return fmt.Errorf("%w: %d bytes, want %d", ErrBadXEdDSA, len(sig), XEdDSASignatureSize)
	}
	capA, err := montgomeryToEdwards(u)
	if err != nil {
		return err
	}
	if !ed25519.Verify(capA, msg, sig) {
		return ErrBadXEdDSA
	}
	return nil
}

// montgomeryToEdwards is convert_mont(u) (spec §2.2) encoded: y = (u - 1)
// / (u + 1) with sign bit 0, for u below p whose point is on the curve and
// not of small order.
func montgomeryToEdwards(u [32]byte) ([]byte, error) {
	// u < p = 2^255 - 19, as the spec requires before the conversion:
	// SetBytes below would silently reduce u mod p and ignore bit 255.
	if u[31]&0x80 != 0 || (u[31] == 0x7f && allFF(u[1:31]) && u[0] >= 0xed) {
		return nil, fmt.Errorf("%w: public key is not below the field prime", ErrBadXEdDSA)
	}
	fu, err := new(field.Element).SetBytes(u[:])
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadXEdDSA, err)
	}
	one := new(field.Element).One()
	num := new(field.Element).Subtract(fu, one)
	den := new(field.Element).Add(fu, one)
	y := new(field.Element).Multiply(num, new(field.Element).Invert(den))
	enc := y.Bytes() // canonical, bit 255 (the sign of x) is 0
	p, err := new(edwards25519.Point).SetBytes(enc)
	if err != nil {
		return nil, fmt.Errorf("%w: public key is not on the curve", ErrBadXEdDSA)
	}
	if new(edwards25519.Point).MultByCofactor(p).Equal(edwards25519.NewIdentityPoint()) == 1 {
		return nil, fmt.Errorf("%w: public key is of small order", ErrBadXEdDSA)
	}
	return enc, nil
}

func allFF(b []byte) bool {
	for _, c := range b {
		if c != 0xff {
			return false
		}
	}
	return true
}
