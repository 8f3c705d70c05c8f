package identity

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha512"
	"encoding/hex"
	"errors"
	"testing"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// montgomery returns the X25519 private key (the clamped scalar) and
// public key of an Ed25519 seed: the same scalar, so the public key is
// the Montgomery form of the Ed25519 public key.
func montgomery(t testing.TB, seed []byte) (priv, pub [32]byte) {
	t.Helper()
	h := sha512.Sum512(seed)
	copy(priv[:], h[:32])
	priv[0] &= 248
	priv[31] = priv[31]&127 | 64
	k, err := ecdh.X25519().NewPrivateKey(priv[:])
	if err != nil {
		t.Fatal(err)
	}
	copy(pub[:], k.PublicKey().Bytes())
	return priv, pub
}

// The XEdDSA spec has no test vectors. RFC 8032's Ed25519 vectors 1-3
// serve instead: their public keys have sign bit 0, so XEdDSA verification
// under the Montgomery form of each key (X25519 of the same scalar,
// computed by crypto/ecdh) must accept the RFC's signatures, the
// conversion must give back the RFC's key, and XEdDSA signatures with the
// scalar must verify under the RFC's key with crypto/ed25519.
func TestXEdDSAVectors(t *testing.T) {
	t.Parallel()
	vectors := []struct{ seed, pub, msg, sig string }{
		{"9d61b19deffd5a60ba844af492ec2cc44449c5697b326919703bac031cae7f60",
			"d75a980182b10ab7d54bfed3c964073a0ee172f3daa62325af021a68f707511a", "",
			"e5564300c360ac729086e2cc806e828a84877f1eb8e5d974d873e065224901555fb8821590a33bacc61e39701cf9b46bd25bf5f0595bbe24655141438e7a100b"},
		{"4ccd089b28ff96da9db6c346ec114e0f5b8a319f35aba624da8cf6ed4fb8a6fb",
			"3d4017c3e843895a92b70aa74d1b7ebc9c982ccf2ec4968cc0cd55f12af4660c", "72",
			"92a009a9f0d4cab8720e820b5f642540a2b27b5416503f8fb3762223ebdb69da085ac1e43e15996e458f3613d0f11d8c387b2eaeb4302aeeb00d291612bb0c00"},
		{"c5aa8df43f9f837bedb7442f31dcb7b166d38535076f094b85ce3a2e0b4458f7",
			"fc51cd8e6218a1a38da47ed00230f0580816ed13ba3303ac5deb911548908025", "af82",
			"6291d657deec24024827e69c3abe01a30ce548a284743a445e3680d7db5ac3ac18ff9b538d16f290ae67f760984dc6594a7c15e9716ed28dc027beceea1ec40a"},
	}
	for i, v := range vectors {
		seed, edPub, msg, sig := unhex(t, v.seed), unhex(t, v.pub), unhex(t, v.msg), unhex(t, v.sig)
		if !ed25519.Verify(edPub, msg, sig) || !bytes.Equal(ed25519.NewKeyFromSeed(seed).Public().(ed25519.PublicKey), edPub) {
			t.Fatalf("vector %d: not an RFC 8032 vector", i+1)
		}
		priv, u := montgomery(t, seed)
		if a, err := montgomeryToEdwards(u); err != nil || !bytes.Equal(a, edPub) {
			t.Fatalf("vector %d: convert_mont(u) = %x, %v; want %x", i+1, a, err, edPub)
		}
		if err := xeddsaVerify(u, msg, sig); err != nil {
			t.Fatalf("vector %d: %v", i+1, err)
		}
		own, err := xeddsaSign(priv, msg, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if !ed25519.Verify(edPub, msg, own[:]) {
			t.Fatalf("vector %d: an XEdDSA signature does not verify under the Ed25519 key", i+1)
		}
	}
}

// libsignal's curve25519 test vector (rust/core/src/curve/curve25519.rs,
// test_signature) comes from its variant of XEdDSA, which fixes the sign
// bit not to 0 but to the key's and carries it in the signature's top
// bit. XEdDSA as specified refuses it (s has bit 255 set); with the sign
// bit it carries, the Edwards point from our conversion verifies it with
// crypto/ed25519, which checks the conversion against an independent
// implementation.
func TestXEdDSALibsignalConversion(t *testing.T) {
	t.Parallel()
	priv := [32]byte(unhex(t, "c097248412e58bf05df487968205132794178e367637f5818f81e0e6ce73e865"))
	u := [32]byte(unhex(t, "ab7e717d4a163b7d9a1d8071dfe9dcf8cdcd1cea3339b6356be84d887e322c64"))
	msg := unhex(t, "05edce9d9c415ca78cb7252e72c2c4a554d3eb29485a0e1d503118d1a82d99fb4a")
	sig := unhex(t, "5de88ca9a89b4a115da79109c67c9c7464a3e4180274f1cb8c63c2984e286dfbede82deb9dcd9fae0bfbb821569b3d9001bd8130cd11d486cef047bd60b86e88")
	if pub, err := x25519Public(priv); err != nil || pub != u {
		t.Fatalf("libsignal's private key gives %x, %v", pub, err)
	}
	if err := xeddsaVerify(u, msg, sig); !errors.Is(err, ErrBadXEdDSA) {
		t.Fatalf("a signature with bit 255 of s set verified: %v", err)
	}
	a, err := montgomeryToEdwards(u)
	if err != nil {
		t.Fatal(err)
	}
	a[31] |= sig[63] & 0x80
	s := bytes.Clone(sig)
	s[63] &= 0x7f
	if !ed25519.Verify(a, msg, s) {
		t.Fatal("the converted key does not verify libsignal's signature")
	}
}

// Signatures verify with both signs of the Edwards key (the signer
// negates its scalar for sign bit 1) and fail on any change of the key,
// the message or the signature.
func TestXEdDSASignVerify(t *testing.T) {
	t.Parallel()
	signs := map[byte]bool{}
	for i := 0; i < 64 || len(signs) < 2; i++ {
		var seed [32]byte
		rand.Read(seed[:])
		priv, u := montgomery(t, seed[:])
		signs[ed25519.NewKeyFromSeed(seed[:]).Public().(ed25519.PublicKey)[31]>>7] = true
		msg := []byte("a message of some length")
		sig, err := xeddsaSign(priv, msg, rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		if err := xeddsaVerify(u, msg, sig[:]); err != nil {
			t.Fatalf("a signature does not verify: %v", err)
		}
		bad := sig
		bad[i%64] ^= 1 << (i % 8)
		other := u
		other[i%31] ^= 1
		for name, err := range map[string]error{
			"changed signature": xeddsaVerify(u, msg, bad[:]),
			"changed message":   xeddsaVerify(u, []byte("another message"), sig[:]),
			"changed key":       xeddsaVerify(other, msg, sig[:]),
			"short signature":   xeddsaVerify(u, msg, sig[:63]),
		} {
			if err == nil {
				t.Fatalf("%s: verified", name)
			}
		}
	}
}

// Keys at or above p, off the curve or of small order are refused before
// any signature is looked at.
func TestXEdDSARefusesKeys(t *testing.T) {
	t.Parallel()
	p := unhex(t, "edffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	pMinus1 := unhex(t, "ecffffffffffffffffffffffffffffffffffffffffffffffffffffffffffff7f")
	top := make([]byte, 32)
	top[31] = 0x80
	keys := map[string][]byte{
		"p": p, "bit 255": top,
		"0 (order 2)": make([]byte, 32), "1 (order 4)": append([]byte{1}, make([]byte, 31)...), "p-1 (order 4)": pMinus1,
	}
	// The first u whose point is not on the curve (it is on the twist).
	for i := 2; i < 256; i++ {
		u := append([]byte{byte(i)}, make([]byte, 31)...)
		if _, err := montgomeryToEdwards([32]byte(u)); err != nil {
			keys["on the twist"] = u
			break
		}
	}
	if len(keys) != 6 {
		t.Fatal("found no u on the twist")
	}
	for name, u := range keys {
		if _, err := montgomeryToEdwards([32]byte(u)); !errors.Is(err, ErrBadXEdDSA) {
			t.Errorf("%s: %v, want ErrBadXEdDSA", name, err)
		}
	}
}

// FuzzXEdDSAVerify: any key, message and signature bytes are refused or
// verify, never a panic; what verifies is refused once the message
// changes.
func FuzzXEdDSAVerify(f *testing.F) {
	priv, u := montgomery(f, make([]byte, 32))
	sig, _ := xeddsaSign(priv, []byte("m"), fixedReader(1))
	f.Add(u[:], []byte("m"), sig[:])
	f.Add(make([]byte, 32), []byte{}, make([]byte, 64))
	f.Fuzz(func(t *testing.T, key, msg, sig []byte) {
		var u [32]byte
		copy(u[:], key)
		if xeddsaVerify(u, msg, sig) == nil && xeddsaVerify(u, append(msg, 0), sig) == nil {
			t.Fatal("one signature verified two messages")
		}
	})
}
