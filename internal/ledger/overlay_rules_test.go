package ledger

import (
	"bytes"
	"crypto/ecdh"
	"crypto/rand"
	"testing"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/spec"
)

// provenOverlay is what node announces for the X25519 private key priv at
// endpoint: the public key and node's proof of possession on testChain.
func provenOverlay(t testing.TB, priv [32]byte, node identity.PublicKey, endpoint string) *NodeOverlay {
	t.Helper()
	k, err := ecdh.X25519().NewPrivateKey(priv[:])
	if err != nil {
		t.Fatal(err)
	}
	proof, err := identity.ProveOverlayKey(priv, testChain, node, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return &NodeOverlay{Key: k.PublicKey().Bytes(), Endpoint: endpoint, Proof: proof[:]}
}

// ownOverlay is what node announces for its own overlay key.
func ownOverlay(t testing.TB, node identity.PrivateKey, endpoint string) *NodeOverlay {
	t.Helper()
	priv, err := node.OverlayKey()
	if err != nil {
		t.Fatal(err)
	}
	return provenOverlay(t, priv, node.Public(), endpoint)
}

func overlayHeartbeat(o *NodeOverlay) Op {
	return Op{NodeHeartbeat: &NodeHeartbeat{Types: spec.AllTypes, Capacity: spec.Resources{CPU: 1000}, Version: "t", Overlay: o}}
}

// A node's overlay key and endpoint are checked and the key is held by
// one node at a time (two nodes that both hold one key contend for it).
func TestHeartbeatOverlay(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultParams())
	other := newKey(t)
	w.registerNode(other, w.farmer, w.farm)
	shared := [32]byte(bytes.Repeat([]byte{9}, 32))
	good := provenOverlay(t, shared, w.node.Public(), "10.0.0.1:51820")
	with := func(change func(o *NodeOverlay)) *NodeOverlay {
		o := *good
		change(&o)
		return &o
	}
	for _, bad := range []*NodeOverlay{
		with(func(o *NodeOverlay) { o.Key = o.Key[:31] }),
		with(func(o *NodeOverlay) { o.Key = make([]byte, 32) }),
		with(func(o *NodeOverlay) { o.Endpoint = "10.0.0.1" }),
		with(func(o *NodeOverlay) { o.Endpoint = "10.0.0.1:0" }),
		with(func(o *NodeOverlay) { o.Endpoint = "node.example:51820" }),
		with(func(o *NodeOverlay) { o.Endpoint = "[fe80::1%eth0]:51820" }),
		with(func(o *NodeOverlay) { o.Proof = nil }),
		with(func(o *NodeOverlay) { o.Proof = o.Proof[:63] }),
	} {
		w.refused(w.do(w.node, overlayHeartbeat(bad)), CodeInvalid)
	}
	w.must(w.node, overlayHeartbeat(provenOverlay(t, shared, w.node.Public(), "[fd00::1]:51820")))
	var n Node
	if w.query(QueryNode+"1", &n); n.Overlay == nil || !bytes.Equal(n.Overlay.Key, good.Key) || n.Overlay.Endpoint != "[fd00::1]:51820" {
		t.Fatalf("node overlay = %+v", n.Overlay)
	}
	w.refused(w.do(other, overlayHeartbeat(provenOverlay(t, shared, other.Public(), "10.0.0.2:51820"))), CodeConflict)
	w.must(w.node, overlayHeartbeat(good)) // same key, new endpoint
	w.must(w.node, overlayHeartbeat(ownOverlay(t, w.node, "10.0.0.1:51820")))
	w.must(other, overlayHeartbeat(provenOverlay(t, shared, other.Public(), "10.0.0.2:51820"))) // released by the key change
	w.must(other, overlayHeartbeat(nil))
	w.must(w.node, overlayHeartbeat(provenOverlay(t, shared, w.node.Public(), "10.0.0.1:51820"))) // released by leaving
}

// A node cannot announce an overlay key it does not hold: not another
// node's key with a proof made by its own overlay key, nor with the
// owner's proof, nor with a proof for another chain; even while the owner
// has not announced it yet. Refused heartbeats change nothing.
func TestHeartbeatOverlayProof(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultParams())
	attacker := newKey(t)
	w.registerNode(attacker, w.farmer, w.farm)
	victim := ownOverlay(t, w.node, "10.0.0.1:51820")
	attackerPriv, err := attacker.OverlayKey()
	if err != nil {
		t.Fatal(err)
	}
	// The attacker's XEdDSA signature, by its own overlay key, over the
	// claim that it holds the victim's key.
	own := provenOverlay(t, attackerPriv, attacker.Public(), "10.0.0.9:51820")
	ownProof := *victim
	ownProof.Endpoint, ownProof.Proof = "10.0.0.9:51820", own.Proof
	replayed := *victim
	replayed.Endpoint = "10.0.0.9:51820"
	otherChain := *victim
	proof, err := w.node.OverlayKeyProof("another-chain")
	if err != nil {
		t.Fatal(err)
	}
	otherChain.Proof = proof[:]
	for name, c := range map[string]struct {
		key *identity.PrivateKey
		o   *NodeOverlay
	}{
		"victim's key, attacker's own proof": {&attacker, &ownProof},
		"victim's key, victim's proof":       {&attacker, &replayed},
		"proof for another chain":            {&w.node, &otherChain},
	} {
		r := w.do(*c.key, overlayHeartbeat(c.o))
		if Code(r.Code) != CodeBadSignature {
			t.Fatalf("%s: code %s (%s), want %s", name, Code(r.Code), r.Log, CodeBadSignature)
		}
	}
	var n Node
	if w.query(QueryNode+"2", &n); n.Overlay != nil {
		t.Fatalf("a refused heartbeat recorded an overlay: %+v", n.Overlay)
	}
	w.must(w.node, overlayHeartbeat(victim))
	w.refused(w.do(attacker, overlayHeartbeat(&ownProof)), CodeBadSignature)
	w.must(attacker, overlayHeartbeat(own))
}
