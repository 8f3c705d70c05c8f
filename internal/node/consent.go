package node

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/spec"
)

// Refusal is a permanent reason not to run a contract generation. The
// reconciler reports it on the ledger as Failed with this reason and never
// runs the generation.
type Refusal struct{ Reason string }

func (r *Refusal) Error() string { return "refused: " + r.Reason }

// IsRefusal reports whether err is a Refusal.
func IsRefusal(err error) bool {
	var r *Refusal
	return errors.As(err, &r)
}

// TwinSource looks up twins; *client.Client implements it.
type TwinSource interface {
	Twin(ctx context.Context, id uint64) (*ledger.Twin, error)
}

// CheckConsent verifies that the contract is addressed to this node
// (self) and that its owner signed this exact spec and secrets for this
// node and generation with a key that is current for the owner now. It
// returns the decoded spec. The contract and the owner's key log come from
// verified reads; the checks here hold even so, so that nothing but the
// owner's signature for this node makes it run anything.
func CheckConsent(ctx context.Context, twins TwinSource, chain string, self uint64, c *ledger.Contract) (*spec.Spec, error) {
	if c.Node != self {
		return nil, &Refusal{Reason: fmt.Sprintf("the contract is addressed to node %d, not to this node (%d)", c.Node, self)}
	}
	if sha256.Sum256(c.Spec) != c.SpecHash || sha256.Sum256(c.Secrets) != c.SecretsHash {
		return nil, &Refusal{Reason: "the spec or secrets do not match the hashes the owner signed"}
	}
	owner, err := twins.Twin(ctx, c.Owner)
	if err != nil {
		return nil, fmt.Errorf("look up owner twin %d: %w", c.Owner, err)
	}
	d := ledger.DeploymentFor(chain, c.Owner, c.Node, c.Nonce, c.Generation, c.Spec, c.Secrets)
	if err := ledger.VerifySpecSig(owner, d, c.SpecSig); err != nil { // ed25519 key or passkey
		return nil, &Refusal{Reason: err.Error()}
	}
	s, err := spec.Decode(c.Spec)
	if err != nil {
		return nil, &Refusal{Reason: err.Error()}
	}
	return s, nil
}

// OpenSecrets opens a contract generation's sealed secrets with the node's
// sealing key.
func OpenSecrets(key identity.SealPrivateKey, chain string, c *ledger.Contract) (map[string][]byte, error) {
	m, err := spec.OpenSecrets(key, spec.SecretsContext{Chain: chain, Twin: c.Owner, Node: c.Node, Nonce: c.Nonce, Generation: c.Generation}, c.Secrets)
	if err != nil {
		return nil, &Refusal{Reason: "sealed secrets do not open with this node's key: " + err.Error()}
	}
	return m, nil
}
