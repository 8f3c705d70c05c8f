package ledger

import "github.com/zerogrid/zerogrid/internal/spec"

// MaxGatewayAddressLen bounds a gateway's announced address.
const MaxGatewayAddressLen = 260

func execGatewayAnnounce(ctx *execCtx, acct *account, op *GatewayAnnounce) error {
	if acct.twin != nil || acct.node != nil {
		return reject(CodeUnauthorized, "key %s belongs to a twin or a node; a gateway announces with its own key (zgridd gateway makes one)", acct.key)
	}
	if len(op.Address) > MaxGatewayAddressLen || !spec.ValidGatewayAddress(op.Address) {
		return reject(CodeInvalid, "gateway address %q is not HOST:PORT", op.Address)
	}
	g := acct.gateway
	if g == nil {
		id, err := nextID(ctx, func(c *Counters) *uint64 { return &c.Gateway })
		if err != nil {
			return err
		}
		// The registering announce sets the new account's sequence itself.
		g = &Gateway{ID: id, Key: acct.key, Seq: 1, Registered: ctx.height}
		if err := putObj(ctx.st, kKey(acct.key), KeyRef{Gateway: id}); err != nil {
			return err
		}
	}
	g.Address, g.Updated = op.Address, ctx.height
	if err := putObj(ctx.st, kGateway(g.ID), g); err != nil {
		return err
	}
	ctx.emit("gateway", "id", u(g.ID), "action", "announce")
	return ctx.setResult(TxResult{ID: g.ID})
}
