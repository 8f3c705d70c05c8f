package ledger

import (
	"bytes"
	"net/netip"
	"unicode/utf8"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/spec"
)

func execFarmCreate(ctx *execCtx, acct *account, op *FarmCreate) error {
	t, err := requireTwin(acct, "creating a farm")
	if err != nil {
		return err
	}
	if op.Name == "" || len(op.Name) > MaxFarmNameLen || !utf8.ValidString(op.Name) {
		return reject(CodeInvalid, "farm name must be 1..%d bytes of UTF-8", MaxFarmNameLen)
	}
	id, err := nextID(ctx, func(c *Counters) *uint64 { return &c.Farm })
	if err != nil {
		return err
	}
	f := &Farm{ID: id, Owner: t.ID, Name: op.Name, Created: ctx.height}
	if err := putObj(ctx.st, kFarm(id), f); err != nil {
		return err
	}
	ctx.emit("farm", "id", u(id), "owner", u(t.ID), "action", "create")
	return ctx.setResult(TxResult{ID: id})
}

func execNodeRegister(ctx *execCtx, acct *account, op *NodeRegister) error {
	farm, err := loadFarm(ctx.st, op.Farm)
	if err != nil {
		return err
	}
	if err := checkFarmApproval(ctx, farm, acct, op); err != nil {
		return err
	}
	if op.SealKey.IsZero() {
		return reject(CodeInvalid, "node registration has no sealing key")
	}
	id, err := nextID(ctx, func(c *Counters) *uint64 { return &c.Node })
	if err != nil {
		return err
	}
	n := &Node{ID: id, Farm: farm.ID, Key: acct.key, SealKey: op.SealKey.Bytes(), Seq: 1, Registered: ctx.height}
	if err := putObj(ctx.st, kNode(id), n); err != nil {
		return err
	}
	if err := putObj(ctx.st, kKey(acct.key), KeyRef{Node: id}); err != nil {
		return err
	}
	ctx.emit("node", "id", u(id), "farm", u(farm.ID), "action", "register")
	return ctx.setResult(TxResult{ID: id})
}

// checkFarmApproval verifies the farm owner's consent to this node key.
func checkFarmApproval(ctx *execCtx, farm *Farm, acct *account, op *NodeRegister) error {
	ap := op.Approval
	switch {
	case ap.Body.Chain != ctx.chain:
		return reject(CodeWrongChain, "farm approval is for chain %q", ap.Body.Chain)
	case ap.Body.Farm != farm.ID:
		return reject(CodeInvalid, "farm approval is for farm %d, not %d", ap.Body.Farm, farm.ID)
	case !ap.Body.Node.Equal(acct.key):
		return reject(CodeUnauthorized, "farm approval is for node key %s, not the signer %s", ap.Body.Node.NodeString(), acct.key.NodeString())
	case ap.Body.Expires < ctx.now:
		return reject(CodeExpired, "farm approval expired at %d; ask the farm owner for a new one", ap.Body.Expires)
	}
	owner, err := loadTwin(ctx.st, farm.Owner)
	if err != nil {
		return err
	}
	if !owner.ActiveKey(ap.Key) {
		return reject(CodeUnauthorized, "farm approval is signed by %s, which is not a current key of farm %d's owner (twin %d)", ap.Key, farm.ID, owner.ID)
	}
	if err := ap.Key.Verify(TagFarmApprove, TxVersion, ap.Body, ap.Sig); err != nil {
		return reject(CodeBadSignature, "farm approval signature does not verify")
	}
	return nil
}

func execNodeHeartbeat(ctx *execCtx, acct *account, op *NodeHeartbeat) error {
	n, err := requireNode(acct, "a heartbeat")
	if err != nil {
		return err
	}
	if len(op.Version) > MaxVersionLen || !utf8.ValidString(op.Version) {
		return reject(CodeInvalid, "software version must be at most %d bytes of UTF-8", MaxVersionLen)
	}
	if err := checkNodeReport(op.Types, op.Conditions); err != nil {
		return err
	}
	if err := setOverlay(ctx, n, op.Overlay); err != nil {
		return err
	}
	n.Capacity = op.Capacity
	n.Version = op.Version
	n.Types, n.Conditions = op.Types, op.Conditions
	n.LastHeartbeat = ctx.now
	if err := putObj(ctx.st, kNode(n.ID), n); err != nil {
		return err
	}
	ctx.emit("node", "id", u(n.ID), "action", "heartbeat")
	return ctx.setResult(TxResult{ID: n.ID})
}

// checkNodeReport bounds what a heartbeat says about the node: known
// workload types, each once, and a short list of short conditions.
func checkNodeReport(types []string, conds []NodeCondition) error {
	seen := map[string]bool{}
	for _, t := range types {
		if !spec.KnownType(t) || seen[t] {
			return reject(CodeInvalid, "workload type %q is unknown or listed twice", t)
		}
		seen[t] = true
	}
	if len(conds) > MaxNodeConditions {
		return reject(CodeInvalid, "%d conditions, limit %d", len(conds), MaxNodeConditions)
	}
	for _, c := range conds {
		if c.Type == "" || len(c.Type) > MaxConditionType || len(c.Reason) > MaxConditionReason ||
			!utf8.ValidString(c.Type) || !utf8.ValidString(c.Reason) {
			return reject(CodeInvalid, "a condition needs a type of 1..%d bytes and a reason of at most %d bytes, in UTF-8", MaxConditionType, MaxConditionReason)
		}
	}
	return nil
}

// setOverlay checks and records a node's overlay key and endpoint. The
// node must prove it holds the key (identity.VerifyOverlayKey, bound to
// this chain and the node's identity key), and a key is held by one node
// only: the index overlay-key/KEY names its holder, so no node can
// announce another's key and disturb its peers.
func setOverlay(ctx *execCtx, n *Node, o *NodeOverlay) error {
	if o != nil {
		if len(o.Key) != 32 || [32]byte(o.Key) == [32]byte{} {
			return reject(CodeInvalid, "overlay key must be a non-zero 32-byte X25519 public key")
		}
		ap, err := netip.ParseAddrPort(o.Endpoint)
		if err != nil || ap.Port() == 0 || ap.Addr().Zone() != "" || len(o.Endpoint) > MaxEndpointLen {
			return reject(CodeInvalid, "overlay endpoint %q is not IP:PORT", o.Endpoint)
		}
		if len(o.Proof) != identity.XEdDSASignatureSize {
			return reject(CodeInvalid, "overlay key needs its %d-byte proof of possession (identity.ProveOverlayKey); got %d bytes: update the node's zgridd",
				identity.XEdDSASignatureSize, len(o.Proof))
		}
		if err := identity.VerifyOverlayKey([32]byte(o.Key), ctx.chain, n.Key, o.Proof); err != nil {
			return reject(CodeBadSignature, "overlay key %x: %v: a node may announce only the overlay key it holds, proven for chain %q and its own node key",
				o.Key, err, ctx.chain)
		}
		var holder uint64
		found, err := getObj(ctx.st, kOverlayKey(o.Key), &holder)
		if err != nil {
			return err
		}
		if found && holder != n.ID {
			return reject(CodeConflict, "overlay key is already announced by node %d", holder)
		}
	}
	if n.Overlay != nil && (o == nil || !bytes.Equal(n.Overlay.Key, o.Key)) {
		ctx.st.del(kOverlayKey(n.Overlay.Key))
	}
	if o != nil {
		if err := putObj(ctx.st, kOverlayKey(o.Key), n.ID); err != nil {
			return err
		}
	}
	n.Overlay = o
	return nil
}

func execFarmRemoveNode(ctx *execCtx, acct *account, op *FarmRemoveNode) error {
	t, err := requireTwin(acct, "removing a node")
	if err != nil {
		return err
	}
	n, err := loadNode(ctx.st, op.Node)
	if err != nil {
		return err
	}
	farm, err := loadFarm(ctx.st, n.Farm)
	if err != nil {
		return err
	}
	if farm.Owner != t.ID {
		return reject(CodeUnauthorized, "node %d belongs to farm %d of twin %d; only the farm's owner may remove it", n.ID, farm.ID, farm.Owner)
	}
	if n.Removed != 0 {
		return reject(CodeConflict, "node %d was already removed at height %d", n.ID, n.Removed)
	}
	if err := setOverlay(ctx, n, nil); err != nil {
		return err
	}
	n.Removed = ctx.height
	if err := putObj(ctx.st, kNode(n.ID), n); err != nil {
		return err
	}
	ctx.emit("node", "id", u(n.ID), "farm", u(farm.ID), "action", "remove")
	return ctx.setResult(TxResult{ID: n.ID})
}
