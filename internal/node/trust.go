package node

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
)

// ApprovalFile is what `zgrid farm approve-node` writes for a node's
// operator: the farm owner's signed consent for the node key to join the
// farm and, from the farm owner's own verified view of the ledger, the
// chain and a block header to trust it from. The operator hands it to the
// node out of band (the farm owner is whom the node trusts about its
// farm's chain); the node uses Trust only on its first start.
type ApprovalFile struct {
	ledger.FarmApproval
	Trust *client.TrustRoot `json:"trust,omitempty"`
}

// ReadApprovalFile reads and checks an approval file: the approval's
// signature, and that its trust root names the approval's chain.
func ReadApprovalFile(path string) (*ApprovalFile, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var a ApprovalFile
	if err := dec.Decode(&a); err != nil {
		return nil, fmt.Errorf("farm approval %s: %w", path, err)
	}
	if err := a.Key.Verify(ledger.TagFarmApprove, ledger.TxVersion, a.Body, a.Sig); err != nil {
		return nil, fmt.Errorf("farm approval %s: signature does not verify", path)
	}
	if a.Trust != nil {
		a.Trust.Period = client.DefaultTrustPeriod
		if err := a.Trust.Validate(); err != nil {
			return nil, fmt.Errorf("farm approval %s: %w", path, err)
		}
		if a.Trust.Chain != a.Body.Chain {
			return nil, fmt.Errorf("farm approval %s: the trust root is for chain %q, the approval for %q", path, a.Trust.Chain, a.Body.Chain)
		}
	}
	return &a, nil
}

// NewApprovalFile signs an approval for node to join farm until expires,
// with the farm owner's client's current trust root.
func NewApprovalFile(ctx context.Context, c *client.Client, owner identity.PrivateKey, farm uint64, node identity.PublicKey, expires int64) (*ApprovalFile, error) {
	ap, err := ledger.NewFarmApproval(owner, c.Chain(), farm, node, expires)
	if err != nil {
		return nil, err
	}
	root, err := c.TrustRoot(ctx)
	if err != nil {
		return nil, err
	}
	return &ApprovalFile{FarmApproval: ap, Trust: &root}, nil
}

// TrustFile is where a node keeps its trusted ledger state.
func TrustFile(dataDir string) string { return filepath.Join(dataDir, "ledger-trust.json") }

// LedgerTrust returns the client options a node verifies the ledger
// with: its own trust file in dataDir, started (when it does not exist
// yet) from rootFile or else from the approval's trust root (see
// client.KeepTrust).
func LedgerTrust(dataDir, rootFile string, approval *ApprovalFile) (client.Options, error) {
	var fallback *client.TrustRoot
	if approval != nil {
		fallback = approval.Trust
	}
	return client.KeepTrust(TrustFile(dataDir), rootFile, fallback, "a farm approval that carries one (`zgrid farm approve-node` writes it)")
}

// ConditionLedgerUntrusted is the condition a node reports while the
// ledger it reads serves answers that do not verify.
const ConditionLedgerUntrusted = "ledger-untrusted"

// untrustedWindow is how long a refused answer stays in the conditions.
const untrustedWindow = 10 * time.Minute

// LedgerConditions returns the node's conditions about the ledger it
// reads: a refused answer in the last ten minutes, with its reason.
func LedgerConditions(c *client.Client, now time.Time) []ledger.NodeCondition {
	at, err := c.LastUntrusted()
	if err == nil || now.Sub(at) > untrustedWindow {
		return nil
	}
	reason := fmt.Sprintf("%s: %v", at.UTC().Format(time.RFC3339), err)
	if len(reason) > ledger.MaxConditionReason {
		reason = strings.ToValidUTF8(reason[:ledger.MaxConditionReason], "")
	}
	return []ledger.NodeCondition{{Type: ConditionLedgerUntrusted, Reason: reason}}
}
