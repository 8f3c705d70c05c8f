package ledger

import (
	"bytes"
	"encoding/json"
	"fmt"

	"github.com/zerogrid/zerogrid/internal/identity"
)

// NewFarmApproval signs the farm owner's consent for node to join farm
// until expires (unix seconds).
func NewFarmApproval(owner identity.PrivateKey, chain string, farm uint64, node identity.PublicKey, expires int64) (FarmApproval, error) {
	body := FarmApprovalBody{Chain: chain, Farm: farm, Node: node, Expires: expires}
	sig, err := owner.Sign(TagFarmApprove, TxVersion, body)
	if err != nil {
		return FarmApproval{}, err
	}
	return FarmApproval{Body: body, Key: owner.Public(), Sig: sig}, nil
}

// ParseFarmApproval reads an approval file (JSON, as `zgrid farm
// approve-node` writes it) and checks its signature; the ledger checks
// again, with the owner's current keys, when the node registers.
func ParseFarmApproval(b []byte) (*FarmApproval, error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var a FarmApproval
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("farm approval: %w", err)
	}
	if err := a.Key.Verify(TagFarmApprove, TxVersion, a.Body, a.Sig); err != nil {
		return nil, fmt.Errorf("farm approval: signature does not verify")
	}
	return &a, nil
}
