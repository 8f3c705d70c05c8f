package ledger

import (
	"strconv"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/zerogrid/zerogrid/internal/identity"
)

// execCtx is one transaction's view of the chain: the state it reads and
// writes, and the block it is (or would be) in.
type execCtx struct {
	st     *overlay
	chain  string
	params Params
	height int64 // height of the block the tx is in (last+1 in CheckTx)
	now    int64 // block time, unix seconds
	events []abci.Event
	result []byte // encoded result for ExecTxResult.Data
	// passkeys are the counters the tx's passkey assertions showed.
	passkeys []passkeyUse
}

// account is the resolved signer of a transaction.
type account struct {
	key     identity.PublicKey
	twin    *Twin    // set for twin accounts
	node    *Node    // set for node accounts
	gateway *Gateway // set for gateway accounts
}

func (a *account) seq() uint64 {
	switch {
	case a.twin != nil:
		return a.twin.Seq
	case a.node != nil:
		return a.node.Seq
	case a.gateway != nil:
		return a.gateway.Seq
	}
	return 0
}

// isRoot reports whether the signer is its twin's root key.
func (a *account) isRoot() bool { return a.twin != nil && a.twin.Root.Equal(a.key) }

// apply runs every rule for tx against ctx.st. On error the caller throws
// ctx.st away, so a failed transaction changes nothing.
func apply(ctx *execCtx, tx *Tx) error {
	if tx.Body.Chain != ctx.chain {
		return reject(CodeWrongChain, "transaction is for chain %q, this is %q", tx.Body.Chain, ctx.chain)
	}
	if err := checkExpiry(ctx, tx.Body.Expires); err != nil {
		return err
	}
	acct, err := resolveSigner(ctx, tx)
	if err != nil {
		return err
	}
	if want := acct.seq(); tx.Body.Seq != want {
		if tx.Body.Seq < want {
			return reject(CodeBadSequence, "sequence %d was already used (next is %d): the transaction is a replay or a duplicate", tx.Body.Seq, want)
		}
		return reject(CodeBadSequence, "sequence %d is ahead of the account's next sequence %d: submit the missing transactions first", tx.Body.Seq, want)
	}
	if err := checkPasskeySigner(ctx, tx, acct); err != nil {
		return err
	}
	if err := dispatch(ctx, tx, acct); err != nil {
		return err
	}
	if err := bumpSeq(ctx, tx, acct); err != nil {
		return err
	}
	return recordPasskeyUse(ctx, acct)
}

func checkExpiry(ctx *execCtx, exp int64) error {
	if exp < ctx.now {
		return reject(CodeExpired, "transaction expired at %d, block time is %d: sign it again with a later expiry", exp, ctx.now)
	}
	if exp > ctx.now+ctx.params.MaxTxTTL {
		return reject(CodeExpired, "expiry %d is more than %d s after block time %d", exp, ctx.params.MaxTxTTL, ctx.now)
	}
	return nil
}

// resolveSigner finds the account of the first signature's key. Twin and
// node registration create their account, so their signer is new.
func resolveSigner(ctx *execCtx, tx *Tx) (*account, error) {
	key := tx.Signer()
	var ref KeyRef
	found, err := getObj(ctx.st, kKey(key), &ref)
	if err != nil {
		return nil, err
	}
	op := &tx.Body.Op
	if op.TwinRegister != nil || op.NodeRegister != nil {
		if found {
			return nil, reject(CodeConflict, "key %s is already registered (%s)", key, refString(ref))
		}
		return &account{key: key}, nil
	}
	if !found && op.GatewayAnnounce != nil {
		return &account{key: key}, nil // a gateway's first announce registers it
	}
	if !found {
		return nil, reject(CodeUnknownKey, "key %s belongs to no twin or node: register it first", key)
	}
	acct := &account{key: key}
	if ref.Node != 0 {
		acct.node, err = loadNode(ctx.st, ref.Node)
		return acct, err
	}
	if ref.Gateway != 0 {
		acct.gateway, err = loadGateway(ctx.st, ref.Gateway)
		return acct, err
	}
	if acct.twin, err = loadTwin(ctx.st, ref.Twin); err != nil {
		return nil, err
	}
	if e := acct.twin.keyEntry(key); e != nil && e.Revoked != 0 {
		return nil, reject(CodeRevokedKey, "key %s of twin %d was revoked at height %d and signs nothing", key, ref.Twin, e.Revoked)
	}
	return acct, nil
}

func refString(r KeyRef) string {
	if r.Node != 0 {
		return "node " + strconv.FormatUint(r.Node, 10)
	}
	if r.Gateway != 0 {
		return "gateway " + strconv.FormatUint(r.Gateway, 10)
	}
	return "twin " + strconv.FormatUint(r.Twin, 10)
}

func bumpSeq(ctx *execCtx, tx *Tx, acct *account) error {
	switch {
	case acct.twin != nil:
		t, err := loadTwin(ctx.st, acct.twin.ID) // reload: the op may have changed it
		if err != nil {
			return err
		}
		t.Seq++
		return putObj(ctx.st, kTwin(t.ID), t)
	case acct.node != nil:
		n, err := loadNode(ctx.st, acct.node.ID)
		if err != nil {
			return err
		}
		n.Seq++
		return putObj(ctx.st, kNode(n.ID), n)
	case acct.gateway != nil:
		g, err := loadGateway(ctx.st, acct.gateway.ID)
		if err != nil {
			return err
		}
		g.Seq++
		return putObj(ctx.st, kGateway(g.ID), g)
	}
	return nil // registration ops set the new account's sequence themselves
}

func dispatch(ctx *execCtx, tx *Tx, acct *account) error {
	op := &tx.Body.Op
	switch {
	case op.TwinRegister != nil:
		return execTwinRegister(ctx, acct, op.TwinRegister)
	case op.TwinAddKey != nil:
		return execTwinAddKey(ctx, acct, op.TwinAddKey)
	case op.TwinRevokeKey != nil:
		return execTwinRevokeKey(ctx, acct, op.TwinRevokeKey)
	case op.FarmCreate != nil:
		return execFarmCreate(ctx, acct, op.FarmCreate)
	case op.NodeRegister != nil:
		return execNodeRegister(ctx, acct, op.NodeRegister)
	case op.NodeHeartbeat != nil:
		return execNodeHeartbeat(ctx, acct, op.NodeHeartbeat)
	case op.ContractCreate != nil:
		return execContractCreate(ctx, acct, op.ContractCreate)
	case op.ContractUpdate != nil:
		return execContractUpdate(ctx, acct, op.ContractUpdate)
	case op.ContractCancel != nil:
		return execContractCancel(ctx, acct, op.ContractCancel)
	case op.ContractAccept != nil:
		return execContractAccept(ctx, acct, op.ContractAccept)
	case op.ContractReport != nil:
		return execContractReport(ctx, acct, op.ContractReport)
	case op.NameClaim != nil:
		return execNameClaim(ctx, acct, op.NameClaim)
	case op.NameRelease != nil:
		return execNameRelease(ctx, acct, op.NameRelease)
	case op.NameAuthorize != nil:
		return execNameAuthorize(ctx, acct, op.NameAuthorize)
	case op.FarmRemoveNode != nil:
		return execFarmRemoveNode(ctx, acct, op.FarmRemoveNode)
	case op.GatewayAnnounce != nil:
		return execGatewayAnnounce(ctx, acct, op.GatewayAnnounce)
	case op.TwinAddPasskey != nil:
		return execTwinAddPasskey(ctx, acct, op.TwinAddPasskey)
	}
	return reject(CodeMalformed, "no operation")
}

func requireTwin(acct *account, what string) (*Twin, error) {
	if acct.twin == nil {
		return nil, reject(CodeUnauthorized, "%s must be signed by a twin's key, not a node's", what)
	}
	return acct.twin, nil
}

func requireNode(acct *account, what string) (*Node, error) {
	if acct.node == nil {
		return nil, reject(CodeUnauthorized, "%s must be signed by a node's key", what)
	}
	if acct.node.Removed != 0 {
		return nil, reject(CodeUnauthorized, "node %d was removed from farm %d at height %d", acct.node.ID, acct.node.Farm, acct.node.Removed)
	}
	return acct.node, nil
}

func (ctx *execCtx) emit(typ string, attrs ...string) {
	ev := abci.Event{Type: typ}
	for i := 0; i+1 < len(attrs); i += 2 {
		ev.Attributes = append(ev.Attributes, abci.EventAttribute{Key: attrs[i], Value: attrs[i+1], Index: true})
	}
	ctx.events = append(ctx.events, ev)
}

func u(id uint64) string { return strconv.FormatUint(id, 10) }

func loadCounters(r reader) (Counters, error) {
	var c Counters
	_, err := getObj(r, kCounters, &c)
	return c, err
}

func nextID(ctx *execCtx, field func(*Counters) *uint64) (uint64, error) {
	c, err := loadCounters(ctx.st)
	if err != nil {
		return 0, err
	}
	p := field(&c)
	*p++
	if err := putObj(ctx.st, kCounters, c); err != nil {
		return 0, err
	}
	return *p, nil
}

// load reads the record at key, or a CodeNotFound rejection naming it.
func load[T any](r reader, key, what string, id uint64) (*T, error) {
	var v T
	found, err := getObj(r, key, &v)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, reject(CodeNotFound, "%s %d does not exist", what, id)
	}
	return &v, nil
}

func loadTwin(r reader, id uint64) (*Twin, error) { return load[Twin](r, kTwin(id), "twin", id) }
func loadNode(r reader, id uint64) (*Node, error) { return load[Node](r, kNode(id), "node", id) }
func loadFarm(r reader, id uint64) (*Farm, error) { return load[Farm](r, kFarm(id), "farm", id) }
func loadGateway(r reader, id uint64) (*Gateway, error) {
	return load[Gateway](r, kGateway(id), "gateway", id)
}
func loadContract(r reader, id uint64) (*Contract, error) {
	return load[Contract](r, kContract(id), "contract", id)
}

// keyEntry returns the device key entry for k, or nil (also for the root).
func (t *Twin) keyEntry(k identity.PublicKey) *KeyEntry {
	for i := range t.Keys {
		if t.Keys[i].Key.Equal(k) {
			return &t.Keys[i]
		}
	}
	return nil
}

// ActiveKey reports whether k is the root or an unrevoked device key of t.
func (t *Twin) ActiveKey(k identity.PublicKey) bool {
	if t.Root.Equal(k) {
		return true
	}
	e := t.keyEntry(k)
	return e != nil && e.Revoked == 0
}
