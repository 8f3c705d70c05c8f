package ledger

import (
	"crypto/sha256"
	"slices"
	"strings"

	"github.com/zerogrid/zerogrid/internal/eventlog"
	"github.com/zerogrid/zerogrid/internal/spec"
)

// checkDeployment validates spec bytes, secrets and the owner's deployment
// signature, returning the resources the spec needs.
func checkDeployment(ctx *execCtx, owner *Twin, d Deployment, rawSpec, secrets []byte, sig Sig) (spec.Resources, error) {
	s, err := spec.Decode(rawSpec)
	if err != nil {
		return spec.Resources{}, reject(CodeInvalid, "%v", err)
	}
	if len(secrets) > MaxSecretsBytes {
		return spec.Resources{}, reject(CodeInvalid, "sealed secrets are %d bytes, limit %d", len(secrets), MaxSecretsBytes)
	}
	if err := checkSpecSig(ctx, owner, d, sig); err != nil {
		return spec.Resources{}, err
	}
	if err := checkNamesHeld(ctx.st, owner.ID, s); err != nil {
		return spec.Resources{}, err
	}
	if err := checkNodeRuns(ctx.st, d.Node, s); err != nil {
		return spec.Resources{}, err
	}
	return s.Total()
}

// checkNodeRuns refuses a spec with a workload type the node did not say
// in its last heartbeat that it can run, naming what the node said about
// that type when it reported a condition for it.
func checkNodeRuns(st reader, id uint64, s *spec.Spec) error {
	n, err := loadNode(st, id)
	if err != nil {
		return err
	}
	for _, w := range s.Workloads {
		if slices.Contains(n.Types, w.Type) {
			continue
		}
		if n.Types == nil {
			return reject(CodeInvalid, "node %d has not reported which workload types it runs (it has sent no heartbeat yet): wait for it or choose another node", n.ID)
		}
		why := ""
		for _, c := range n.Conditions {
			if c.Type == CannotRunPrefix+w.Type {
				why = ": " + c.Reason
			}
		}
		return reject(CodeInvalid, "node %d cannot run %s workloads (it runs %s)%s; choose another node", n.ID, w.Type, strings.Join(n.Types, ", "), why)
	}
	return nil
}

// checkNamesHeld refuses a spec whose gateway-name workloads serve a name
// the owner does not hold.
func checkNamesHeld(st reader, owner uint64, s *spec.Spec) error {
	names, err := s.GatewayNames()
	if err != nil {
		return reject(CodeInvalid, "%v", err)
	}
	for _, name := range names {
		var nc NameContract
		found, err := getObj(st, kName(name), &nc)
		if err != nil {
			return err
		}
		if !found {
			return reject(CodeInvalid, "gateway name %q is not claimed: claim it first (zgrid name claim %s)", name, name)
		}
		if nc.Owner != owner {
			return reject(CodeUnauthorized, "gateway name %q belongs to twin %d, not to twin %d", name, nc.Owner, owner)
		}
	}
	return nil
}

// DeploymentFor returns what an owner signs for a contract generation.
func DeploymentFor(chain string, twin, node uint64, nonce []byte, gen uint64, rawSpec, secrets []byte) Deployment {
	return Deployment{
		Chain: chain, Twin: twin, Node: node, Nonce: nonce, Generation: gen,
		SpecHash: sha256.Sum256(rawSpec), SecretsHash: sha256.Sum256(secrets),
	}
}

func execContractCreate(ctx *execCtx, acct *account, op *ContractCreate) error {
	t, err := requireTwin(acct, "creating a contract")
	if err != nil {
		return err
	}
	if len(op.Nonce) < MinNonceBytes || len(op.Nonce) > MaxNonceBytes {
		return reject(CodeInvalid, "client nonce is %d bytes, want %d..%d", len(op.Nonce), MinNonceBytes, MaxNonceBytes)
	}
	var prior uint64
	if found, err := getObj(ctx.st, kNonce(t.ID, op.Nonce), &prior); err != nil {
		return err
	} else if found {
		return reject(CodeConflict, "twin %d already created contract %d with this nonce", t.ID, prior)
	}
	n, err := loadNode(ctx.st, op.Node)
	if err != nil {
		return err
	}
	if n.Removed != 0 {
		return reject(CodeInvalid, "node %d was removed from its farm; choose another node", n.ID)
	}
	d := DeploymentFor(ctx.chain, t.ID, n.ID, op.Nonce, 1, op.Spec, op.Secrets)
	if _, err := checkDeployment(ctx, t, d, op.Spec, op.Secrets, op.SpecSig); err != nil {
		return err
	}
	id, err := nextID(ctx, func(c *Counters) *uint64 { return &c.Contract })
	if err != nil {
		return err
	}
	c := &Contract{
		ID: id, Owner: t.ID, Node: n.ID, Nonce: op.Nonce, State: StateCreated, Generation: 1,
		Spec: op.Spec, SpecHash: d.SpecHash, SpecSig: op.SpecSig, Secrets: op.Secrets, SecretsHash: d.SecretsHash,
		Created: ctx.height, Updated: ctx.height, Deadline: ctx.height + ctx.params.AcceptDeadlineBlocks,
	}
	if err := saveContract(ctx, c); err != nil {
		return err
	}
	for _, kv := range []struct {
		k string
		v any
	}{{kNonce(t.ID, op.Nonce), id}, {kByTwin(t.ID, id), true}, {kByNode(n.ID, id), true}, {kDeadline(c.Deadline, id), true}} {
		if err := putObj(ctx.st, kv.k, kv.v); err != nil {
			return err
		}
	}
	ctx.emitContract(c, "create")
	return ctx.setResult(TxResult{ID: id})
}

func (ctx *execCtx) emitContract(c *Contract, action string) {
	ctx.emit("contract", "id", u(c.ID), "owner", u(c.Owner), "node", u(c.Node), "action", action, "state", c.State)
}

func saveContract(ctx *execCtx, c *Contract) error {
	c.Updated = ctx.height
	return putObj(ctx.st, kContract(c.ID), c)
}

// ownedLive loads a contract the signer owns and that is still live.
func ownedLive(ctx *execCtx, acct *account, id uint64, what string) (*Twin, *Contract, error) {
	t, err := requireTwin(acct, what)
	if err != nil {
		return nil, nil, err
	}
	c, err := loadContract(ctx.st, id)
	if err != nil {
		return nil, nil, err
	}
	if c.Owner != t.ID {
		return nil, nil, reject(CodeUnauthorized, "contract %d belongs to twin %d; only its owner may change it", id, c.Owner)
	}
	if !c.Live() {
		return nil, nil, reject(CodeConflict, "contract %d is %s", id, c.State)
	}
	return t, c, nil
}

func execContractUpdate(ctx *execCtx, acct *account, op *ContractUpdate) error {
	t, c, err := ownedLive(ctx, acct, op.Contract, "updating a contract")
	if err != nil {
		return err
	}
	if op.Generation != c.Generation+1 {
		return reject(CodeConflict, "contract %d is at generation %d; an update must carry generation %d (someone else updated it: re-read and retry)", c.ID, c.Generation, c.Generation+1)
	}
	d := DeploymentFor(ctx.chain, t.ID, c.Node, c.Nonce, op.Generation, op.Spec, op.Secrets)
	if _, err := checkDeployment(ctx, t, d, op.Spec, op.Secrets, op.SpecSig); err != nil {
		return err
	}
	c.Generation = op.Generation
	c.Spec, c.SpecHash, c.SpecSig = op.Spec, d.SpecHash, op.SpecSig
	c.Secrets, c.SecretsHash = op.Secrets, d.SecretsHash
	if err := saveContract(ctx, c); err != nil {
		return err
	}
	ctx.emitContract(c, "update")
	return ctx.setResult(TxResult{ID: c.ID})
}

func execContractCancel(ctx *execCtx, acct *account, op *ContractCancel) error {
	_, c, err := ownedLive(ctx, acct, op.Contract, "cancelling a contract")
	if err != nil {
		return err
	}
	if err := endContract(ctx, c, StateCancelled, "cancelled by owner"); err != nil {
		return err
	}
	ctx.emitContract(c, "cancel")
	return ctx.setResult(TxResult{ID: c.ID})
}

// endContract moves c to a final state and frees its node reservation.
func endContract(ctx *execCtx, c *Contract, state, reason string) error {
	if c.State == StateCreated {
		ctx.st.del(kDeadline(c.Deadline, c.ID))
	}
	if c.Reserved != (spec.Resources{}) {
		n, err := loadNode(ctx.st, c.Node)
		if err != nil {
			return err
		}
		n.Reserved = n.Reserved.Sub(c.Reserved)
		if err := putObj(ctx.st, kNode(n.ID), n); err != nil {
			return err
		}
		c.Reserved = spec.Resources{}
	}
	c.State, c.Reason = state, reason
	return saveContract(ctx, c)
}

// addressed loads a live contract addressed to the signing node.
func addressed(ctx *execCtx, acct *account, id, gen uint64, what string) (*Node, *Contract, error) {
	n, err := requireNode(acct, what)
	if err != nil {
		return nil, nil, err
	}
	c, err := loadContract(ctx.st, id)
	if err != nil {
		return nil, nil, err
	}
	if c.Node != n.ID {
		return nil, nil, reject(CodeUnauthorized, "contract %d is addressed to node %d, not node %d", id, c.Node, n.ID)
	}
	if !c.Live() {
		return nil, nil, reject(CodeConflict, "contract %d is %s", id, c.State)
	}
	if gen != c.Generation {
		return nil, nil, reject(CodeConflict, "contract %d is at generation %d, not %d", id, c.Generation, gen)
	}
	return n, c, nil
}

func execContractAccept(ctx *execCtx, acct *account, op *ContractAccept) error {
	n, c, err := addressed(ctx, acct, op.Contract, op.Generation, "accepting a contract")
	if err != nil {
		return err
	}
	if c.Accepted == c.Generation {
		return reject(CodeConflict, "contract %d generation %d is already accepted", c.ID, c.Generation)
	}
	need, err := specTotal(c.Spec)
	if err != nil {
		return err
	}
	others := n.Reserved.Sub(c.Reserved)
	total, err := others.Add(need)
	if err != nil || !total.Fits(n.Capacity) {
		return reject(CodeNoCapacity, "node %d cannot fit contract %d: needs %s, free %s", n.ID, c.ID, need, n.Capacity.Sub(others))
	}
	n.Reserved = total
	if err := putObj(ctx.st, kNode(n.ID), n); err != nil {
		return err
	}
	if c.State == StateCreated {
		ctx.st.del(kDeadline(c.Deadline, c.ID))
		c.Deadline = 0
	}
	c.Reserved, c.Accepted, c.State, c.Reason = need, c.Generation, StateAccepted, ""
	if err := saveContract(ctx, c); err != nil {
		return err
	}
	ctx.emitContract(c, "accept")
	return ctx.setResult(TxResult{ID: c.ID})
}

func specTotal(raw []byte) (spec.Resources, error) {
	s, err := spec.Decode(raw)
	if err != nil {
		return spec.Resources{}, err
	}
	return s.Total()
}

var workloadStates = map[string]bool{
	WorkloadPending: true, WorkloadProvisioning: true, WorkloadReady: true,
	WorkloadDegraded: true, WorkloadFailed: true,
}

func execContractReport(ctx *execCtx, acct *account, op *ContractReport) error {
	n, c, err := addressed(ctx, acct, op.Contract, op.Generation, "a status report")
	if err != nil {
		return err
	}
	if len(op.Events) > MaxReportEvents {
		return reject(CodeInvalid, "report carries %d events, limit %d", len(op.Events), MaxReportEvents)
	}
	seq, head, err := eventlog.Verify(n.Key, c.ID, c.EventSeq, c.EventHead, op.Events)
	if err != nil {
		return reject(CodeConflict, "events do not continue contract %d's event log at %d: %v (a node cannot rewrite what it reported)", c.ID, c.EventSeq, err)
	}
	total, err := checkWorkloads(c, op.Workloads)
	if err != nil {
		return err
	}
	state, reason := summarize(op.Workloads, total)
	if c.Accepted != op.Generation && state != StateFailed {
		return reject(CodeConflict, "contract %d generation %d is not accepted: accept it first, or report it failed to refuse it", c.ID, op.Generation)
	}
	c.Workloads, c.ReportGen, c.EventSeq, c.EventHead = op.Workloads, op.Generation, seq, head
	c.State, c.Reason = state, reason
	if err := saveContract(ctx, c); err != nil {
		return err
	}
	ctx.emitContract(c, "report")
	return ctx.setResult(TxResult{ID: c.ID})
}

// checkWorkloads checks a report against the spec and returns how many
// workloads the spec has.
func checkWorkloads(c *Contract, ws []WorkloadStatus) (int, error) {
	s, err := spec.Decode(c.Spec)
	if err != nil {
		return 0, err
	}
	names := make(map[string]bool, len(s.Workloads))
	for _, w := range s.Workloads {
		names[w.Name] = true
	}
	if len(ws) > len(names) {
		return 0, reject(CodeInvalid, "report has %d workloads, the spec %d", len(ws), len(names))
	}
	for _, w := range ws {
		if !names[w.Name] {
			return 0, reject(CodeInvalid, "report names workload %q, which the spec does not have", w.Name)
		}
		delete(names, w.Name) // also rejects duplicates
		if !workloadStates[w.State] {
			return 0, reject(CodeInvalid, "workload %q has unknown state %q", w.Name, w.State)
		}
		if len(w.Reason) > 512 {
			return 0, reject(CodeInvalid, "workload %q reason is longer than 512 bytes", w.Name)
		}
	}
	return len(s.Workloads), nil
}

// summarize derives the contract state from its workloads: failed if any
// failed, degraded if any degraded, ready if all total workloads are
// ready, else accepted.
func summarize(ws []WorkloadStatus, total int) (string, string) {
	state, reason, ready := StateReady, "", 0
	for _, w := range ws {
		switch w.State {
		case WorkloadFailed:
			return StateFailed, w.Name + ": " + w.Reason
		case WorkloadDegraded:
			state, reason = StateDegraded, w.Name+": "+w.Reason
		case WorkloadReady:
			ready++
		}
	}
	if state == StateReady && ready != total {
		return StateAccepted, ""
	}
	return state, reason
}
