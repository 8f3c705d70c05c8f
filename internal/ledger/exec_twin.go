package ledger

import (
	"unicode/utf8"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/wire"
)

// MaxDeviceKeys bounds a twin's key log.
const MaxDeviceKeys = 32

// TxResult is the Data of a successful transaction: the id of what it
// created or changed, when there is one.
type TxResult struct {
	ID   uint64 `cbor:"id,omitempty" json:"id,omitempty"`
	Name string `cbor:"name,omitempty" json:"name,omitempty"`
}

func (ctx *execCtx) setResult(r TxResult) error {
	b, err := wire.Marshal(r)
	ctx.result = b
	return err
}

func execTwinRegister(ctx *execCtx, acct *account, op *TwinRegister) error {
	if len(op.Name) > 64 || !utf8.ValidString(op.Name) {
		return reject(CodeInvalid, "twin name must be at most 64 bytes of UTF-8")
	}
	id, err := nextID(ctx, func(c *Counters) *uint64 { return &c.Twin })
	if err != nil {
		return err
	}
	t := &Twin{ID: id, Name: op.Name, Root: acct.key, Seq: 1, Created: ctx.height}
	if err := putObj(ctx.st, kTwin(id), t); err != nil {
		return err
	}
	if err := putObj(ctx.st, kKey(acct.key), KeyRef{Twin: id}); err != nil {
		return err
	}
	ctx.emit("twin", "id", u(id), "action", "register")
	return ctx.setResult(TxResult{ID: id})
}

func execTwinAddKey(ctx *execCtx, acct *account, op *TwinAddKey) error {
	t, err := requireTwin(acct, "adding a device key")
	if err != nil {
		return err
	}
	cert := op.Cert
	dev := cert.Cert.Device
	switch {
	case !cert.Root.Equal(t.Root):
		return reject(CodeUnauthorized, "device certificate is signed by %s, not by twin %d's root key", cert.Root, t.ID)
	case cert.Cert.Twin != t.ID:
		return reject(CodeInvalid, "device certificate names twin %d, not %d", cert.Cert.Twin, t.ID)
	case len(t.Keys) >= MaxDeviceKeys:
		return reject(CodeInvalid, "twin %d already has %d device keys (limit %d)", t.ID, len(t.Keys), MaxDeviceKeys)
	}
	if err := cert.Verify(t.Root, ctx.now); err != nil {
		return reject(CodeBadSignature, "device certificate: %v", err)
	}
	proof := DeviceProof{Chain: ctx.chain, Twin: t.ID, Device: dev}
	if err := identity.VerifyPossession(dev, proof, op.Proof); err != nil {
		return reject(CodeBadSignature, "device key %s did not prove possession of its private key", dev)
	}
	var ref KeyRef
	if found, err := getObj(ctx.st, kKey(dev), &ref); err != nil {
		return err
	} else if found {
		return reject(CodeConflict, "key %s is already registered (%s); keys are never reused", dev, refString(ref))
	}
	t.Keys = append(t.Keys, KeyEntry{Key: dev, Name: cert.Cert.Name, Cert: cert, Added: ctx.height})
	if err := putObj(ctx.st, kTwin(t.ID), t); err != nil {
		return err
	}
	if err := putObj(ctx.st, kKey(dev), KeyRef{Twin: t.ID}); err != nil {
		return err
	}
	ctx.emit("twin", "id", u(t.ID), "action", "add_key", "key", dev.String())
	return ctx.setResult(TxResult{ID: t.ID})
}

func execTwinRevokeKey(ctx *execCtx, acct *account, op *TwinRevokeKey) error {
	t, err := requireTwin(acct, "revoking a key")
	if err != nil {
		return err
	}
	if op.Key.Equal(t.Root) {
		return reject(CodeInvalid, "the root key cannot be revoked; it is recovered from the mnemonic")
	}
	e := t.keyEntry(op.Key)
	switch {
	case e == nil:
		return reject(CodeNotFound, "key %s is not a device key of twin %d", op.Key, t.ID)
	case e.Revoked != 0:
		return reject(CodeConflict, "key %s was already revoked at height %d", op.Key, e.Revoked)
	case !acct.isRoot() && !acct.key.Equal(op.Key):
		return reject(CodeUnauthorized, "a device key may revoke only itself; sign with the root key to revoke %s", op.Key)
	}
	e.Revoked = ctx.height
	if err := putObj(ctx.st, kTwin(t.ID), t); err != nil {
		return err
	}
	ctx.emit("twin", "id", u(t.ID), "action", "revoke_key", "key", op.Key.String())
	return ctx.setResult(TxResult{ID: t.ID})
}
