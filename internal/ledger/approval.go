package ledger

import (
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
