package ledger

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/zerogrid/zerogrid/internal/eventlog"
	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/spec"
)

func TestTxEnvelopeRules(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultParams())
	claim := func(n string) Op { return Op{NameClaim: &NameClaim{Name: n}} }

	t.Run("ErrReplay", func(t *testing.T) {
		raw := w.sign(w.user, w.body(w.user, claim("replay")))
		if r := w.block(raw)[0]; r.Code != 0 {
			t.Fatalf("first: %s", r.Log)
		}
		w.seqs[w.user.Public()]++
		w.refused(w.block(raw)[0], CodeBadSequence)
	})
	t.Run("ErrReplayInSameBlock", func(t *testing.T) {
		raw := w.sign(w.user, w.body(w.user, claim("twice")))
		rs := w.block(raw, raw)
		if rs[0].Code != 0 {
			t.Fatalf("first: %s", rs[0].Log)
		}
		w.seqs[w.user.Public()]++
		w.refused(rs[1], CodeBadSequence)
	})
	t.Run("ErrExpired", func(t *testing.T) {
		b := w.body(w.user, claim("late"))
		b.Expires = w.now.Unix() // the next block is one second later
		w.refused(w.block(w.sign(w.user, b))[0], CodeExpired)
	})
	t.Run("ErrExpiryTooFar", func(t *testing.T) {
		b := w.body(w.user, claim("far"))
		b.Expires = w.now.Unix() + DefaultParams().MaxTxTTL + 10
		w.refused(w.block(w.sign(w.user, b))[0], CodeExpired)
	})
	t.Run("ErrWrongSignature", func(t *testing.T) {
		b := w.body(w.user, claim("forged"))
		tx, _, err := SignTx(w.user, b)
		if err != nil {
			t.Fatal(err)
		}
		tx.Body.Op.NameClaim.Name = "stolen" // body changed after signing
		w.refused(w.block(mustMarshal(t, tx))[0], CodeBadSignature)
	})
	t.Run("ErrSignedByAnotherKey", func(t *testing.T) {
		tx, _, _ := SignTx(newKey(t), w.body(w.user, claim("other")))
		tx.Sigs[0].Key = w.user.Public() // claim to be the user
		w.refused(w.block(mustMarshal(t, tx))[0], CodeBadSignature)
	})
	t.Run("ErrSequenceGap", func(t *testing.T) {
		b := w.body(w.user, claim("gap"))
		b.Seq += 5
		w.refused(w.block(w.sign(w.user, b))[0], CodeBadSequence)
	})
	t.Run("ErrWrongChain", func(t *testing.T) {
		b := w.body(w.user, claim("chain"))
		b.Chain = "other-chain"
		w.refused(w.block(w.sign(w.user, b))[0], CodeWrongChain)
	})
	t.Run("ErrUnknownKey", func(t *testing.T) {
		k := newKey(t)
		w.refused(w.block(w.sign(k, w.body(k, claim("nobody"))))[0], CodeUnknownKey)
	})
	t.Run("ErrMalformed", func(t *testing.T) {
		w.refused(w.block([]byte("not cbor"))[0], CodeMalformed)
		w.refused(w.block(w.sign(w.user, w.body(w.user, claim("ok")))[:20])[0], CodeMalformed)
	})
	t.Run("ErrTwoOps", func(t *testing.T) {
		b := w.body(w.user, claim("two"))
		b.Op.NameRelease = &NameRelease{Name: "two"}
		sig, _ := w.user.Sign(TagTx, TxVersion, b)
		w.refused(w.block(mustMarshal(t, &Tx{Body: b, Sigs: []Sig{{Key: w.user.Public(), Sig: sig}}}))[0], CodeMalformed)
	})
	t.Run("ErrExtraSignatures", func(t *testing.T) {
		// The same signed body with its signature twice, or with a second
		// (valid) signature by another key, is another byte form of one
		// transaction: refused at admission and in blocks, so a
		// transaction has one hash and cannot be replayed under another.
		b := w.body(w.user, claim("malleable"))
		tx, raw, err := SignTx(w.user, b)
		if err != nil {
			t.Fatal(err)
		}
		other := newKey(t)
		osig, _ := other.Sign(TagTx, TxVersion, b)
		for name, sigs := range map[string][]Sig{
			"duplicated": {tx.Sigs[0], tx.Sigs[0]},
			"unused":     {tx.Sigs[0], {Key: other.Public(), Sig: osig}},
			"none":       {},
		} {
			forged := mustMarshal(t, &Tx{Body: b, Sigs: sigs})
			ck, err := w.app.CheckTx(context.Background(), &abci.CheckTxRequest{Tx: forged})
			if err != nil || Code(ck.Code) != CodeMalformed {
				t.Fatalf("%s: CheckTx code %d %v, want malformed", name, ck.Code, err)
			}
			w.refused(w.block(forged)[0], CodeMalformed)
		}
		if r := w.block(raw)[0]; r.Code != 0 {
			t.Fatalf("the genuine transaction after its forgeries: %s", r.Log)
		}
		w.seqs[w.user.Public()]++
		// Signing the same body again gives the same bytes.
		if _, again, _ := SignTx(w.user, b); !bytes.Equal(again, raw) {
			t.Fatal("one body signed twice gave two byte forms")
		}
	})
	t.Run("ErrTwinRegisteredTwice", func(t *testing.T) {
		b := Body{Chain: testChain, Expires: w.now.Unix() + 60, Op: Op{TwinRegister: &TwinRegister{}}}
		w.refused(w.block(w.sign(w.user, b))[0], CodeConflict)
	})
}

func TestContractLifecycle(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultParams())
	id := w.must(w.user, w.createOp(w.user, w.twin, w.nodeID, testSpec(t, 500)))
	c := w.contract(id)
	if c.State != StateCreated || c.Generation != 1 || c.Deadline == 0 {
		t.Fatalf("after create: %+v", c)
	}
	w.must(w.node, Op{ContractAccept: &ContractAccept{Contract: id, Generation: 1}})
	var n Node
	w.query(fmt.Sprintf("%s%d", QueryNode, w.nodeID), &n)
	if n.Reserved.CPU != 500 || n.Reserved.Disk != 1<<20 {
		t.Fatalf("reservation after accept: %+v", n.Reserved)
	}
	log := &nodeLog{key: w.node, contract: id}
	report := func(gen uint64, events int, states ...string) *ContractReport {
		r := &ContractReport{Contract: id, Generation: gen, Events: log.next(t, events)}
		for i, name := range []string{"web", "data"}[:len(states)] {
			r.Workloads = append(r.Workloads, WorkloadStatus{Name: name, State: states[i], Reason: "r"})
		}
		return r
	}
	w.must(w.node, Op{ContractReport: report(1, 3, WorkloadReady, WorkloadReady)})
	if c = w.contract(id); c.State != StateReady || c.EventSeq != 3 || c.EventHead != log.head {
		t.Fatalf("after ready report: %+v", c)
	}
	w.must(w.node, Op{ContractReport: report(1, 1, WorkloadReady, WorkloadDegraded)})
	if c = w.contract(id); c.State != StateDegraded || c.Reason == "" || c.EventSeq != 4 {
		t.Fatalf("after degraded report: %+v", c)
	}
	t.Run("ErrEventLogRewritten", func(t *testing.T) {
		saved := *log
		r := report(1, 2, WorkloadReady)
		r.Events = r.Events[1:] // a gap
		w.refused(w.do(w.node, Op{ContractReport: r}), CodeConflict)
		*log = saved
		r = report(1, 1, WorkloadReady)
		r.Events[0].Event.Reason = "edited after signing"
		w.refused(w.do(w.node, Op{ContractReport: r}), CodeConflict)
		*log = saved
		rewrite := &nodeLog{key: w.node, contract: id} // start the chain over
		r = report(1, 0, WorkloadReady)
		r.Events = rewrite.next(t, 5)
		w.refused(w.do(w.node, Op{ContractReport: r}), CodeConflict)
		*log = saved
	})
	t.Run("ErrUnknownWorkload", func(t *testing.T) {
		r := report(1, 0)
		r.Workloads = []WorkloadStatus{{Name: "ghost", State: WorkloadReady}}
		w.refused(w.do(w.node, Op{ContractReport: r}), CodeInvalid)
	})
	// Update: generation+1 only; the node accepts the new generation and the
	// reservation follows the new spec.
	w.refused(w.do(w.user, w.updateOp(w.user, c, 3, testSpec(t, 700))), CodeConflict)
	w.must(w.user, w.updateOp(w.user, c, 2, testSpec(t, 700)))
	w.refused(w.do(w.user, w.updateOp(w.user, c, 2, testSpec(t, 800))), CodeConflict)
	w.refused(w.do(w.node, Op{ContractAccept: &ContractAccept{Contract: id, Generation: 1}}), CodeConflict)
	w.must(w.node, Op{ContractAccept: &ContractAccept{Contract: id, Generation: 2}})
	w.query(fmt.Sprintf("%s%d", QueryNode, w.nodeID), &n)
	if n.Reserved.CPU != 700 {
		t.Fatalf("reservation after update: %+v", n.Reserved)
	}
	w.must(w.user, Op{ContractCancel: &ContractCancel{Contract: id}})
	w.query(fmt.Sprintf("%s%d", QueryNode, w.nodeID), &n)
	if c = w.contract(id); c.State != StateCancelled || n.Reserved != (spec.Resources{}) {
		t.Fatalf("after cancel: %+v, node reserved %+v", c, n.Reserved)
	}
	w.refused(w.do(w.user, Op{ContractCancel: &ContractCancel{Contract: id}}), CodeConflict)
	w.refused(w.do(w.node, Op{ContractReport: report(2, 0, WorkloadReady)}), CodeConflict)
}

func TestOnlyOwnerChangesContract(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultParams())
	id := w.must(w.user, w.createOp(w.user, w.twin, w.nodeID, testSpec(t, 100)))
	mallory := newKey(t)
	mt := w.must(mallory, Op{TwinRegister: &TwinRegister{}})
	c := w.contract(id)
	w.refused(w.do(mallory, Op{ContractCancel: &ContractCancel{Contract: id}}), CodeUnauthorized)
	w.refused(w.do(mallory, w.updateOp(mallory, c, 2, testSpec(t, 100))), CodeUnauthorized)
	// A spec signed by someone else cannot ride in the owner's transaction.
	op := w.createOp(mallory, w.twin, w.nodeID, testSpec(t, 100))
	w.refused(w.do(w.user, op), CodeUnauthorized)
	// Nor can mallory create a contract in the owner's name.
	op = w.createOp(mallory, w.twin, w.nodeID, testSpec(t, 100))
	w.refused(w.do(mallory, op), CodeBadSignature)
	// The node cannot cancel either.
	w.refused(w.do(w.node, Op{ContractCancel: &ContractCancel{Contract: id}}), CodeUnauthorized)
	if got := w.contract(id); got.State != StateCreated {
		t.Fatalf("contract changed: %+v", got)
	}
	_ = mt
}

func TestOnlyAddressedNodeAcceptsAndReports(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultParams())
	other := newKey(t)
	otherID := w.registerNode(other, w.farmer, w.farm)
	w.must(other, Op{NodeHeartbeat: &NodeHeartbeat{Types: spec.AllTypes, Capacity: spec.Resources{CPU: 9000, Memory: 1 << 40, Disk: 1 << 40}}})
	id := w.must(w.user, w.createOp(w.user, w.twin, w.nodeID, testSpec(t, 100)))
	w.refused(w.do(other, Op{ContractAccept: &ContractAccept{Contract: id, Generation: 1}}), CodeUnauthorized)
	w.refused(w.do(w.user, Op{ContractAccept: &ContractAccept{Contract: id, Generation: 1}}), CodeUnauthorized)
	w.must(w.node, Op{ContractAccept: &ContractAccept{Contract: id, Generation: 1}})
	rep := &ContractReport{Contract: id, Generation: 1, Workloads: []WorkloadStatus{{Name: "web", State: WorkloadReady}}}
	w.refused(w.do(other, Op{ContractReport: rep}), CodeUnauthorized)
	w.must(w.node, Op{ContractReport: rep})
	_ = otherID
}

func TestAcceptRefusesWhatDoesNotFit(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultParams()) // node has 2000 millicores
	a := w.must(w.user, w.createOp(w.user, w.twin, w.nodeID, testSpec(t, 1500)))
	b := w.must(w.user, w.createOp(w.user, w.twin, w.nodeID, testSpec(t, 600)))
	w.must(w.node, Op{ContractAccept: &ContractAccept{Contract: a, Generation: 1}})
	r := w.do(w.node, Op{ContractAccept: &ContractAccept{Contract: b, Generation: 1}})
	w.refused(r, CodeNoCapacity)
	if c := w.contract(b); c.State != StateCreated {
		t.Fatalf("refused contract changed state: %s", c.State)
	}
	w.must(w.user, Op{ContractCancel: &ContractCancel{Contract: a}})
	w.must(w.node, Op{ContractAccept: &ContractAccept{Contract: b, Generation: 1}})
}

func TestUnacceptedContractExpires(t *testing.T) {
	t.Parallel()
	p := DefaultParams()
	p.AcceptDeadlineBlocks = 3
	w := newWorld(t, p)
	id := w.must(w.user, w.createOp(w.user, w.twin, w.nodeID, testSpec(t, 100)))
	kept := w.must(w.user, w.createOp(w.user, w.twin, w.nodeID, testSpec(t, 100)))
	w.must(w.node, Op{ContractAccept: &ContractAccept{Contract: kept, Generation: 1}})
	// created at h, kept accepted at h+2; deadline h+3.
	if c := w.contract(id); c.State != StateCreated {
		t.Fatalf("expired too early: %+v", c)
	}
	w.block()
	if c := w.contract(id); c.State != StateExpired || c.Reason == "" {
		t.Fatalf("not expired after deadline: %+v", c)
	}
	if c := w.contract(kept); c.State != StateAccepted {
		t.Fatalf("accepted contract expired: %+v", c)
	}
	w.refused(w.do(w.node, Op{ContractAccept: &ContractAccept{Contract: id, Generation: 1}}), CodeConflict)
}

func TestNameHasOneOwner(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultParams())
	bob := newKey(t)
	w.must(bob, Op{TwinRegister: &TwinRegister{}})
	w.must(w.user, Op{NameClaim: &NameClaim{Name: "shop"}})
	w.refused(w.do(bob, Op{NameClaim: &NameClaim{Name: "shop"}}), CodeConflict)
	w.refused(w.do(bob, Op{NameRelease: &NameRelease{Name: "shop"}}), CodeUnauthorized)
	w.refused(w.do(w.user, Op{NameClaim: &NameClaim{Name: "Bad_Name"}}), CodeInvalid)
	var nc NameContract
	if w.query(QueryName+"shop", &nc); nc.Owner != w.twin {
		t.Fatalf("owner %d", nc.Owner)
	}
	w.must(w.user, Op{NameRelease: &NameRelease{Name: "shop"}})
	w.must(bob, Op{NameClaim: &NameClaim{Name: "shop"}})
	if code := w.query(QueryName+"nope", nil); code != CodeNotFound {
		t.Fatalf("missing name: %s", code)
	}
}

func TestNodeRegistrationNeedsFarmOwner(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultParams())
	n := newKey(t)
	seal, _ := n.SealKey()
	op := func(ap FarmApproval) Op {
		return Op{NodeRegister: &NodeRegister{Farm: w.farm, SealKey: seal.Public(), Approval: ap}}
	}
	w.refused(w.do(n, op(w.approval(w.user, w.farm, n.Public()))), CodeUnauthorized) // not the owner
	w.refused(w.do(n, op(w.approval(w.farmer, w.farm, newKey(t).Public()))), CodeUnauthorized)
	ap := w.approval(w.farmer, w.farm, n.Public())
	ap.Body.Expires++ // signature no longer covers the body
	w.refused(w.do(n, op(ap)), CodeBadSignature)
	w.must(n, op(w.approval(w.farmer, w.farm, n.Public())))
}

func mustMarshal(t testing.TB, v any) []byte {
	b, err := wireMarshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// nodeLog builds a node's signed event chain for one contract.
type nodeLog struct {
	key      identity.PrivateKey
	contract uint64
	seq      uint64
	head     [32]byte
}

func (l *nodeLog) next(t testing.TB, n int) []eventlog.Signed {
	var out []eventlog.Signed
	for range n {
		l.seq++
		s, err := eventlog.Sign(l.key, eventlog.Event{Contract: l.contract, Seq: l.seq, Prev: l.head, Time: int64(l.seq), Kind: eventlog.KindReady, Workload: "web"})
		if err != nil {
			t.Fatal(err)
		}
		l.head, _ = s.Event.Hash()
		out = append(out, s)
	}
	return out
}

// TestNodeRefusesByReportingFailure: a node that will not run a generation
// (a bad signature, a digest mismatch) says so on the ledger without
// accepting it, and the owner sees why.
func TestNodeRefusesByReportingFailure(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultParams())
	id := w.must(w.user, w.createOp(w.user, w.twin, w.nodeID, testSpec(t, 100)))
	ready := &ContractReport{Contract: id, Generation: 1, Workloads: []WorkloadStatus{{Name: "web", State: WorkloadReady}}}
	w.refused(w.do(w.node, Op{ContractReport: ready}), CodeConflict)
	log := &nodeLog{key: w.node, contract: id}
	refuse := &ContractReport{Contract: id, Generation: 1, Events: log.next(t, 1),
		Workloads: []WorkloadStatus{{Name: "web", State: WorkloadFailed, Reason: "image digest mismatch"}}}
	w.must(w.node, Op{ContractReport: refuse})
	if c := w.contract(id); c.State != StateFailed || c.Reason != "web: image digest mismatch" || c.Reserved != (spec.Resources{}) {
		t.Fatalf("after refusal: %+v", c)
	}
}

func TestContractsOnlyForTypesTheNodeRuns(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultParams())
	bare := newKey(t)
	bareID := w.registerNode(bare, w.farmer, w.farm)
	r := w.do(w.user, w.createOp(w.user, w.twin, bareID, testSpec(t, 100)))
	w.refused(r, CodeInvalid)
	if !strings.Contains(r.Log, "no heartbeat yet") {
		t.Fatalf("refusal for a silent node does not say why: %s", r.Log)
	}
	w.must(bare, Op{NodeHeartbeat: &NodeHeartbeat{Capacity: spec.Resources{CPU: 4000, Memory: 1 << 30, Disk: 1 << 30},
		Types:      []string{spec.TypeVolume},
		Conditions: []NodeCondition{{Type: CannotRunPrefix + spec.TypeContainer, Reason: "runc is not installed (Debian package runc)"}}}})
	r = w.do(w.user, w.createOp(w.user, w.twin, bareID, testSpec(t, 100)))
	w.refused(r, CodeInvalid)
	for _, want := range []string{"cannot run container", "runc is not installed"} {
		if !strings.Contains(r.Log, want) {
			t.Fatalf("refusal %q does not say %q", r.Log, want)
		}
	}
	// An update may not add a type the node cannot run either.
	vol, _ := (&spec.Spec{Version: spec.Version, Workloads: []spec.Workload{{Name: "data", Type: spec.TypeVolume, Resources: spec.Resources{Disk: 1 << 20}}}}).Encode()
	id := w.must(w.user, w.createOp(w.user, w.twin, bareID, vol))
	w.refused(w.do(w.user, w.updateOp(w.user, w.contract(id), 2, testSpec(t, 100))), CodeInvalid)

	for name, hb := range map[string]*NodeHeartbeat{
		"unknown type":   {Types: []string{"teleport"}},
		"type twice":     {Types: []string{spec.TypeVolume, spec.TypeVolume}},
		"empty cond":     {Conditions: []NodeCondition{{}}},
		"long reason":    {Conditions: []NodeCondition{{Type: "x", Reason: strings.Repeat("r", MaxConditionReason+1)}}},
		"too many conds": {Conditions: make([]NodeCondition, MaxNodeConditions+1)},
	} {
		if r := w.do(bare, Op{NodeHeartbeat: hb}); r.Code != uint32(CodeInvalid) {
			t.Errorf("%s: code %d (%s), want invalid", name, r.Code, r.Log)
		}
	}
}
