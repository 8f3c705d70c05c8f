// Package clienttest is the conformance suite of ledger clients: every
// Backend (a validator over RPC, the in-process ledger) must give a
// client the same answers, commits, events and refusals.
package clienttest

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/eventlog"
	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
	"github.com/zerogrid/zerogrid/internal/spec"
)

// Factory starts a ledger with params for the test and returns a client
// of it; the ledger stops when the test ends.
type Factory func(t *testing.T, params ledger.Params) *client.Client

// Run runs every conformance test against ledgers from start.
func Run(t *testing.T, start Factory) {
	for name, test := range map[string]func(*testing.T, Factory){
		"Lifecycle":           testLifecycle,
		"PipelinedSubmits":    testPipelinedSubmits,
		"ContractEvents":      testContractEvents,
		"ReadYourWrites":      testReadYourWrites,
		"ListsPageCompletely": testListsPage,
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			test(t, start)
		})
	}
}

func key(t *testing.T) identity.PrivateKey {
	k, err := identity.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustSubmit(t *testing.T, s *client.Signer, op ledger.Op) *client.Result {
	t.Helper()
	res, err := s.Submit(t.Context(), op)
	if err != nil {
		t.Fatalf("%s: %v", op.Kind(), err)
	}
	if res.Height == 0 {
		t.Fatalf("%s: no commit height", op.Kind())
	}
	return res
}

// testLifecycle registers accounts, reads them back, is refused, and
// watches a contract be created and expire.
func testLifecycle(t *testing.T, start Factory) {
	p := ledger.DefaultParams()
	p.AcceptDeadlineBlocks = 3
	c := start(t, p)
	ctx := t.Context()
	user, farmer, node := key(t), key(t), key(t)
	us, fs, ns := c.Signer(user), c.Signer(farmer), c.Signer(node)
	twin := mustSubmit(t, us, ledger.Op{TwinRegister: &ledger.TwinRegister{Name: "alice"}}).ID
	mustSubmit(t, fs, ledger.Op{TwinRegister: &ledger.TwinRegister{}})
	farm := mustSubmit(t, fs, ledger.Op{FarmCreate: &ledger.FarmCreate{Name: "f"}}).ID
	nodeID := registerNode(t, c, ns, farmer, farm, node)

	t.Run("Queries", func(t *testing.T) {
		tw, err := c.TwinByKey(ctx, user.Public())
		if err != nil || tw.ID != twin || tw.Name != "alice" {
			t.Fatalf("twin by key: %+v %v", tw, err)
		}
		if _, err := c.Twin(ctx, 999); !errors.Is(err, client.ErrNotFound) {
			t.Fatalf("missing twin: %v", err)
		}
		n, err := c.Node(ctx, nodeID)
		if err != nil || n.Farm != farm || !n.Key.Equal(node.Public()) {
			t.Fatalf("node: %+v %v", n, err)
		}
		st, err := c.Status(ctx)
		if err != nil || st.Height < 1 || !st.Verified || st.AppHash == "" || st.Chain != c.Chain() {
			t.Fatalf("status: %+v %v", st, err)
		}
	})

	t.Run("ErrRejectedAtAdmission", func(t *testing.T) {
		_, err := c.Signer(user).Submit(ctx, ledger.Op{TwinRegister: &ledger.TwinRegister{}})
		var rej *ledger.Rejection
		if !errors.As(err, &rej) || rej.Code != ledger.CodeConflict || rej.Reason == "" {
			t.Fatalf("re-register: %v", err)
		}
	})

	// Watch from now: a contract is created, then expires unaccepted.
	from, err := c.LatestHeight(ctx)
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	events := c.WatchContracts(wctx, from, client.ContractFilter{Node: nodeID})
	id := mustSubmit(t, us, createOp(t, c, user, twin, nodeID)).ID
	want := []string{"create", "expire"}
	for _, action := range want {
		ev, ok := <-events
		if !ok {
			t.Fatalf("watch ended before %q", action)
		}
		if ev.Contract != id || ev.Action != action {
			t.Fatalf("event %+v, want %s of contract %d", ev, action, id)
		}
	}
	list, err := c.ContractsByTwin(ctx, twin)
	if err != nil || len(list) != 1 || list[0].State != ledger.StateExpired {
		t.Fatalf("contracts by twin: %+v %v", list, err)
	}
	byNode, err := c.ContractsByNode(ctx, nodeID)
	if err != nil || len(byNode) != 1 {
		t.Fatalf("contracts by node: %+v %v", byNode, err)
	}
}

// testPipelinedSubmits sends many transactions from one key at once: the
// signer's sequence tracking must keep them all valid.
func testPipelinedSubmits(t *testing.T, start Factory) {
	c := start(t, ledger.DefaultParams())
	s := c.Signer(key(t))
	mustSubmit(t, s, ledger.Op{TwinRegister: &ledger.TwinRegister{}})
	const n = 40
	errs := make(chan error, n)
	for i := range n {
		go func() {
			_, err := s.Submit(t.Context(), ledger.Op{NameClaim: &ledger.NameClaim{Name: fmt.Sprintf("name-%d", i)}})
			errs <- err
		}()
	}
	for range n {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
	acct, err := c.Account(t.Context(), s.Key())
	if err != nil || acct.Seq != n+1 {
		t.Fatalf("account after %d txs: %+v %v", n, acct, err)
	}
}

func registerNode(t *testing.T, c *client.Client, ns *client.Signer, farmer identity.PrivateKey, farm uint64, node identity.PrivateKey) uint64 {
	t.Helper()
	body := ledger.FarmApprovalBody{Chain: c.Chain(), Farm: farm, Node: node.Public(), Expires: time.Now().Add(time.Hour).Unix()}
	sig, err := farmer.Sign(ledger.TagFarmApprove, ledger.TxVersion, body)
	if err != nil {
		t.Fatal(err)
	}
	seal, err := node.SealKey()
	if err != nil {
		t.Fatal(err)
	}
	id := mustSubmit(t, ns, ledger.Op{NodeRegister: &ledger.NodeRegister{Farm: farm, SealKey: seal.Public(),
		Approval: ledger.FarmApproval{Body: body, Key: farmer.Public(), Sig: sig}}}).ID
	mustSubmit(t, ns, ledger.Op{NodeHeartbeat: &ledger.NodeHeartbeat{Types: spec.AllTypes, Capacity: spec.Resources{CPU: 4000, Memory: 8 << 30, Disk: 100 << 30}, Version: "test"}})
	return id
}

func createOp(t *testing.T, c *client.Client, owner identity.PrivateKey, twin, node uint64) ledger.Op {
	s := &spec.Spec{Version: spec.Version, Workloads: []spec.Workload{{Name: "web", Type: spec.TypeContainer, Resources: spec.Resources{CPU: 100, Memory: 64 << 20}}}}
	raw, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	d := ledger.DeploymentFor(c.Chain(), twin, node, nonce, 1, raw, nil)
	sig, err := owner.Sign(ledger.TagDeployment, ledger.TxVersion, d)
	if err != nil {
		t.Fatal(err)
	}
	return ledger.Op{ContractCreate: &ledger.ContractCreate{Node: node, Nonce: nonce, Spec: raw, SpecSig: ledger.Sig{Key: owner.Public(), Sig: sig}}}
}

// testContractEvents: a node reports events in two reports; the
// client collects them from the record and verifies the chain up to the
// ledger's head.
func testContractEvents(t *testing.T, start Factory) {
	c := start(t, ledger.DefaultParams())
	user, farmer, node := key(t), key(t), key(t)
	us, fs, ns := c.Signer(user), c.Signer(farmer), c.Signer(node)
	twin := mustSubmit(t, us, ledger.Op{TwinRegister: &ledger.TwinRegister{}}).ID
	mustSubmit(t, fs, ledger.Op{TwinRegister: &ledger.TwinRegister{}})
	farm := mustSubmit(t, fs, ledger.Op{FarmCreate: &ledger.FarmCreate{Name: "f"}}).ID
	nodeID := registerNode(t, c, ns, farmer, farm, node)
	id := mustSubmit(t, us, createOp(t, c, user, twin, nodeID)).ID
	mustSubmit(t, ns, ledger.Op{ContractAccept: &ledger.ContractAccept{Contract: id, Generation: 1}})
	var seq uint64
	var head [32]byte
	events := func(kinds ...string) []eventlog.Signed {
		var out []eventlog.Signed
		for _, k := range kinds {
			seq++
			s, err := eventlog.Sign(node, eventlog.Event{Contract: id, Seq: seq, Prev: head, Time: time.Now().UnixMilli(), Kind: k, Workload: "web"})
			if err != nil {
				t.Fatal(err)
			}
			head, _ = s.Event.Hash()
			out = append(out, s)
		}
		return out
	}
	report := func(state string, kinds ...string) ledger.Op {
		return ledger.Op{ContractReport: &ledger.ContractReport{Contract: id, Generation: 1, Events: events(kinds...),
			Workloads: []ledger.WorkloadStatus{{Name: "web", State: state}}}}
	}
	mustSubmit(t, ns, report(ledger.WorkloadProvisioning, eventlog.KindAccepted, eventlog.KindProvisioning))
	mustSubmit(t, ns, report(ledger.WorkloadReady, eventlog.KindReady))
	log, err := c.ContractEvents(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	if !log.Verified || len(log.Events) != 3 || log.Events[2].Event.Kind != eventlog.KindReady || log.Head != head {
		t.Fatalf("log: %+v", log)
	}
}

// testReadYourWrites: after a transaction commits, every read through the
// same client shows it, at once.
func testReadYourWrites(t *testing.T, start Factory) {
	c := start(t, ledger.DefaultParams())
	s := c.Signer(key(t))
	mustSubmit(t, s, ledger.Op{TwinRegister: &ledger.TwinRegister{}})
	for i := range 5 {
		name := fmt.Sprintf("ryw-%d", i)
		mustSubmit(t, s, ledger.Op{NameClaim: &ledger.NameClaim{Name: name}})
		if _, err := c.Name(t.Context(), name); err != nil {
			t.Fatalf("read after commit of %s: %v", name, err)
		}
	}
}

// testListsPage: lists longer than one page come back whole and in order.
func testListsPage(t *testing.T, start Factory) {
	c := start(t, ledger.DefaultParams())
	user, farmer, node := key(t), key(t), key(t)
	us, fs, ns := c.Signer(user), c.Signer(farmer), c.Signer(node)
	twin := mustSubmit(t, us, ledger.Op{TwinRegister: &ledger.TwinRegister{}}).ID
	mustSubmit(t, fs, ledger.Op{TwinRegister: &ledger.TwinRegister{}})
	farm := mustSubmit(t, fs, ledger.Op{FarmCreate: &ledger.FarmCreate{Name: "f"}}).ID
	nodeID := registerNode(t, c, ns, farmer, farm, node)
	const n = ledger.MaxListLimit + 5
	pending := make([]*client.Pending, 0, n)
	for range n {
		p, err := us.Send(t.Context(), createOp(t, c, user, twin, nodeID))
		if err != nil {
			t.Fatal(err)
		}
		pending = append(pending, p)
	}
	for _, p := range pending {
		if _, err := p.Wait(t.Context()); err != nil {
			t.Fatal(err)
		}
	}
	list, err := c.ContractsByTwin(t.Context(), twin)
	if err != nil || len(list) != n {
		t.Fatalf("contracts by twin: %d, %v; want %d", len(list), err, n)
	}
	for i := range list {
		if i > 0 && list[i].ID <= list[i-1].ID {
			t.Fatalf("list out of order at %d", i)
		}
	}
}
