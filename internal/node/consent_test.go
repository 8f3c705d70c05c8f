package node

import (
	"context"
	"crypto/rand"
	"testing"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/spec"
)

type twins map[uint64]*ledger.Twin

func (t twins) Twin(_ context.Context, id uint64) (*ledger.Twin, error) { return t[id], nil }

func signedContract(t *testing.T, owner identity.PrivateKey, nodeSeal identity.SealPublicKey) *ledger.Contract {
	return signedContractFor(t, owner, nodeSeal, 2)
}

// signedContractFor is contract 5 of twin 1 for node, signed by owner.
func signedContractFor(t *testing.T, owner identity.PrivateKey, nodeSeal identity.SealPublicKey, node uint64) *ledger.Contract {
	s := &spec.Spec{Version: 1, Workloads: []spec.Workload{{Name: "web", Type: spec.TypeVolume, Resources: spec.Resources{Disk: 1 << 20}}}}
	raw, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	c := &ledger.Contract{ID: 5, Owner: 1, Node: node, Nonce: []byte("nonce-01"), Generation: 1, Spec: raw}
	c.Secrets, err = spec.SealSecrets(nodeSeal, spec.SecretsContext{Chain: "c", Twin: 1, Node: node, Nonce: c.Nonce, Generation: 1}, map[string][]byte{"K": []byte("v")})
	if err != nil {
		t.Fatal(err)
	}
	d := ledger.DeploymentFor("c", 1, node, c.Nonce, 1, raw, c.Secrets)
	c.SpecHash, c.SecretsHash = d.SpecHash, d.SecretsHash
	sig, _ := owner.Sign(ledger.TagDeployment, ledger.TxVersion, d)
	c.SpecSig = ledger.Sig{Key: owner.Public(), Sig: sig}
	return c
}

func TestCheckConsent(t *testing.T) {
	t.Parallel()
	owner, _ := identity.GenerateKey(rand.Reader)
	mallory, _ := identity.GenerateKey(rand.Reader)
	nodeKey, _ := identity.GenerateKey(rand.Reader)
	seal, _ := nodeKey.SealKey()
	tw := twins{1: {ID: 1, Root: owner.Public()}}
	ctx := context.Background()
	c := signedContract(t, owner, seal.Public())
	if _, err := CheckConsent(ctx, tw, "c", 2, c); err != nil {
		t.Fatalf("good contract: %v", err)
	}
	if m, err := OpenSecrets(seal, "c", c); err != nil || string(m["K"]) != "v" {
		t.Fatalf("secrets: %v %v", m, err)
	}
	for name, mod := range map[string]func(*ledger.Contract){
		"other signer":     func(c *ledger.Contract) { *c = *signedContract(t, mallory, seal.Public()) },
		"spec swapped":     func(c *ledger.Contract) { c.Spec = append([]byte{}, c.Spec...); c.Spec[len(c.Spec)-1] ^= 1 },
		"other generation": func(c *ledger.Contract) { c.Generation = 2 },
		"other node":       func(c *ledger.Contract) { c.Node = 3 },
	} {
		bad := signedContract(t, owner, seal.Public())
		mod(bad)
		if _, err := CheckConsent(ctx, tw, "c", 2, bad); !IsRefusal(err) {
			t.Errorf("%s: got %v, want a refusal", name, err)
		}
	}
	// A contract the owner did sign, but for another node, is not this
	// node's to run, whoever hands it over.
	elsewhere := signedContractFor(t, owner, seal.Public(), 3)
	if _, err := CheckConsent(ctx, tw, "c", 2, elsewhere); !IsRefusal(err) {
		t.Errorf("contract for node 3 given to node 2: %v", err)
	}
	revoked := twins{1: {ID: 1, Root: mallory.Public(), Keys: []ledger.KeyEntry{{Key: owner.Public(), Revoked: 9}}}}
	if _, err := CheckConsent(ctx, revoked, "c", 2, c); !IsRefusal(err) {
		t.Errorf("revoked signer: %v", err)
	}
}
