package spec

import (
	"fmt"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/wire"
)

// SecretsTag is the domain tag of the context sealed secrets are bound to.
const SecretsTag = "deployment-secrets"

// MaxSecrets bounds how many secrets one deployment carries.
const MaxSecrets = 64

// SecretsContext binds sealed secrets to one contract generation on one
// chain and node: a ciphertext cannot be moved to another deployment, node
// or generation and still open.
type SecretsContext struct {
	Chain      string `cbor:"chain"`
	Twin       uint64 `cbor:"twin"`
	Node       uint64 `cbor:"node"`
	Nonce      []byte `cbor:"nonce"`
	Generation uint64 `cbor:"gen"`
}

func (c SecretsContext) info() ([]byte, error) { return wire.Preimage(SecretsTag, 1, c) }

// SealSecrets encrypts name → value to the node's sealing key (HPKE,
// ML-KEM-768 + X25519). No secrets seal to nil.
func SealSecrets(node identity.SealPublicKey, ctx SecretsContext, secrets map[string][]byte) ([]byte, error) {
	if len(secrets) == 0 {
		return nil, nil
	}
	if len(secrets) > MaxSecrets {
		return nil, fmt.Errorf("%w: %d secrets, limit %d", ErrInvalid, len(secrets), MaxSecrets)
	}
	pt, err := wire.Marshal(secrets)
	if err != nil {
		return nil, err
	}
	info, err := ctx.info()
	if err != nil {
		return nil, err
	}
	return identity.Seal(node, info, pt)
}

// OpenSecrets decrypts what SealSecrets made, for the same context.
func OpenSecrets(key identity.SealPrivateKey, ctx SecretsContext, sealed []byte) (map[string][]byte, error) {
	if len(sealed) == 0 {
		return map[string][]byte{}, nil
	}
	info, err := ctx.info()
	if err != nil {
		return nil, err
	}
	pt, err := key.Open(info, sealed)
	if err != nil {
		return nil, fmt.Errorf("open sealed secrets: %w", err)
	}
	var out map[string][]byte
	if err := wire.Unmarshal(pt, &out); err != nil {
		return nil, fmt.Errorf("sealed secrets: %w", err)
	}
	return out, nil
}
