package identity

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"testing"
)

// A node's overlay key proof verifies for its key, its node and its chain
// only; another node cannot make one for a key it does not hold, nor
// reuse the owner's.
func TestOverlayKeyProof(t *testing.T) {
	t.Parallel()
	a, b := testKey(t, 1), testKey(t, 2)
	const chain = "zerogrid-test"
	aKey, err := a.OverlayPublicKey()
	if err != nil {
		t.Fatal(err)
	}
	bKey, err := b.OverlayPublicKey()
	if err != nil {
		t.Fatal(err)
	}
	proof, err := a.OverlayKeyProof(chain)
	if err != nil {
		t.Fatal(err)
	}
	bProof, err := b.OverlayKeyProof(chain)
	if err != nil {
		t.Fatal(err)
	}
	// b signs a claim to a's key with its own overlay key.
	bPriv, err := b.OverlayKey()
	if err != nil {
		t.Fatal(err)
	}
	d, err := overlayClaim{Chain: chain, Node: b.Public(), Key: aKey}.digest()
	if err != nil {
		t.Fatal(err)
	}
	squat, err := xeddsaSign(bPriv, d[:], rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tampered := proof
	tampered[5] ^= 1
	for _, c := range []struct {
		name  string
		key   [32]byte
		chain string
		node  PublicKey
		proof []byte
		ok    bool
	}{
		{"own key", aKey, chain, a.Public(), proof[:], true},
		{"b's own key", bKey, chain, b.Public(), bProof[:], true},
		{"a's proof claimed by b", aKey, chain, b.Public(), proof[:], false},
		{"b's proof for a's key", aKey, chain, b.Public(), bProof[:], false},
		{"b signs a's key with its own", aKey, chain, b.Public(), squat[:], false},
		{"another chain", aKey, "other-chain", a.Public(), proof[:], false},
		{"another key", bKey, chain, a.Public(), proof[:], false},
		{"tampered", aKey, chain, a.Public(), tampered[:], false},
		{"no proof", aKey, chain, a.Public(), nil, false},
		{"no node", aKey, chain, PublicKey{}, proof[:], false},
	} {
		err := VerifyOverlayKey(c.key, c.chain, c.node, c.proof)
		if c.ok && err != nil {
			t.Errorf("%s: %v", c.name, err)
		}
		if !c.ok && !errors.Is(err, ErrBadOverlayProof) {
			t.Errorf("%s: %v, want ErrBadOverlayProof", c.name, err)
		}
	}
}

// The proof's encoding is fixed: a proof made with known randomness is
// the golden one, and the golden one verifies.
func TestOverlayKeyProofGolden(t *testing.T) {
	t.Parallel()
	k := testKey(t, 7)
	priv, err := k.OverlayKey()
	if err != nil {
		t.Fatal(err)
	}
	pub, _ := k.OverlayPublicKey()
	proof, err := ProveOverlayKey(priv, "zerogrid-golden", k.Public(), fixedReader(3))
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "overlay_proof.json", map[string]string{
		"Chain": "zerogrid-golden", "Node": k.Public().NodeString(), "OverlayPublic": hex.EncodeToString(pub[:]),
		"Proof": hex.EncodeToString(proof[:]),
	})
	if err := VerifyOverlayKey(pub, "zerogrid-golden", k.Public(), proof[:]); err != nil {
		t.Fatal(err)
	}
}

// FuzzVerifyOverlayKey: any key and proof bytes are refused with
// ErrBadOverlayProof or verify, never a panic.
func FuzzVerifyOverlayKey(f *testing.F) {
	k, _ := NewPrivateKey(make([]byte, 32))
	pub, _ := k.OverlayPublicKey()
	proof, _ := k.OverlayKeyProof("c")
	f.Add(pub[:], proof[:])
	f.Add(make([]byte, 32), make([]byte, 64))
	f.Fuzz(func(t *testing.T, key, proof []byte) {
		var u [32]byte
		copy(u[:], key)
		if err := VerifyOverlayKey(u, "c", k.Public(), proof); err != nil && !errors.Is(err, ErrBadOverlayProof) {
			t.Fatalf("error %v does not wrap ErrBadOverlayProof", err)
		}
	})
}
