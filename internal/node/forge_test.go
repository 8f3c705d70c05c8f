package node

import (
	"context"
	"crypto/rand"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
	"github.com/zerogrid/zerogrid/internal/ledger/ledgertest"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
)

// A validator that answers with a forged state — the victim's twin id
// holding the attacker's key, and a contract for this node signed by it —
// gets nothing run: the node refuses every such answer, runs nothing, and
// says why in its conditions on the ledger.
func TestNodeRefusesForgedLedger(t *testing.T) {
	t.Parallel()
	g := newGridRPC(t)
	attacker := ledgertest.Start(t, nil)
	forgeContractFor(t, attacker, g.twin, g.nodeID)

	proxy := ledgertest.NewForgingProxy(t, g.c.URL(), attacker.URL())
	root, err := g.c.TrustRoot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	nc, err := client.Dial(t.Context(), proxy.URL, client.Options{TrustRoot: &root, CommitTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()

	ctx, cancel := context.WithCancel(t.Context())
	done := make(chan struct{}, 2)
	defer func() { cancel(); <-done; <-done }()
	go func() {
		defer func() { done <- struct{}{} }()
		Heartbeat(ctx, nc.Signer(g.nodeKey), func() (*ledger.NodeHeartbeat, error) {
			return &ledger.NodeHeartbeat{Capacity: spec.Resources{CPU: 4000, Memory: 4 << 30, Disk: 100 << 30}, Types: spec.AllTypes,
				Conditions: LedgerConditions(nc, time.Now())}, nil
		}, 200*time.Millisecond, slog.New(slog.DiscardHandler))
	}()
	clock := workload.SystemClock{}
	ctr, vol := workload.NewInmem(spec.TypeContainer, clock), workload.NewInmem(spec.TypeVolume, clock)
	r, err := NewReconciler(Config{Client: nc, Key: g.nodeKey, NodeID: g.nodeID, DataDir: t.TempDir(),
		Managers: map[string]workload.Manager{spec.TypeContainer: ctr, spec.TypeVolume: vol},
		Resync:   300 * time.Millisecond, Tick: 100 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	go func() { defer func() { done <- struct{}{} }(); _ = r.Run(ctx) }()
	time.Sleep(time.Second) // the heartbeat signer has its sequence; the agent has resynced honestly

	proxy.Forge(ledgertest.ForgeState)
	deadline := time.Now().Add(30 * time.Second)
	for {
		n, err := g.c.Node(t.Context(), g.nodeID) // the honest ledger, read directly
		if err == nil && hasCondition(n, ConditionLedgerUntrusted, "proof") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the node never reported the forged answers: %+v %v", n, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	for _, m := range []*workload.Inmem{ctr, vol} {
		if refs, _ := m.List(t.Context()); len(refs) != 0 {
			t.Fatalf("the forged contract runs: %v", refs)
		}
	}
}

func hasCondition(n *ledger.Node, typ, says string) bool {
	for _, c := range n.Conditions {
		if c.Type == typ && strings.Contains(c.Reason, says) {
			return true
		}
	}
	return false
}

// forgeContractFor builds, on the attacker's chain, twin `twin` with the
// attacker's key and a contract for node `node` that it signed.
func forgeContractFor(t *testing.T, a *client.Client, twin, node uint64) {
	t.Helper()
	mallory, _ := identity.GenerateKey(rand.Reader)
	submit := func(k identity.PrivateKey, op ledger.Op) uint64 {
		t.Helper()
		res, err := a.Signer(k).Submit(t.Context(), op)
		if err != nil {
			t.Fatalf("attacker %s: %v", op.Kind(), err)
		}
		return res.ID
	}
	if id := submit(mallory, ledger.Op{TwinRegister: &ledger.TwinRegister{}}); id != twin {
		t.Fatalf("forged twin %d, want %d", id, twin)
	}
	farm := submit(mallory, ledger.Op{FarmCreate: &ledger.FarmCreate{Name: "f"}})
	var nk identity.PrivateKey
	for id := uint64(0); id != node; {
		nk, _ = identity.GenerateKey(rand.Reader)
		ap, _ := ledger.NewFarmApproval(mallory, a.Chain(), farm, nk.Public(), time.Now().Add(time.Hour).Unix())
		seal, _ := nk.SealKey()
		id = submit(nk, ledger.Op{NodeRegister: &ledger.NodeRegister{Farm: farm, SealKey: seal.Public(), Approval: ap}})
	}
	submit(nk, ledger.Op{NodeHeartbeat: &ledger.NodeHeartbeat{Capacity: spec.Resources{CPU: 4000, Memory: 4 << 30, Disk: 100 << 30}, Types: spec.AllTypes}})
	raw := webSpec(t)
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	d := ledger.DeploymentFor(a.Chain(), twin, node, nonce, 1, raw, nil)
	sig, _ := mallory.Sign(ledger.TagDeployment, ledger.TxVersion, d)
	submit(mallory, ledger.Op{ContractCreate: &ledger.ContractCreate{Node: node, Nonce: nonce, Spec: raw, SpecSig: ledger.Sig{Key: mallory.Public(), Sig: sig}}})
}
