package ledger

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/wire"
)

const testChain = "zerogrid-test"

// chainT drives an App through blocks without CometBFT, as a validator would.
type chainT struct {
	t    testing.TB
	app  *App
	db   dbm.DB
	now  time.Time
	seqs map[identity.PublicKey]uint64
}

func newChainT(t testing.TB, params Params) *chainT {
	t.Helper()
	return newChainTDB(t, params, dbm.NewMemDB())
}

func newChainTDB(t testing.TB, params Params, db dbm.DB) *chainT {
	t.Helper()
	c := &chainT{t: t, db: db, now: time.Unix(1_800_000_000, 0), seqs: map[identity.PublicKey]uint64{}}
	c.open()
	g, err := MarshalGenesis(GenesisState{Params: params})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.app.InitChain(context.Background(), &abci.InitChainRequest{ChainId: testChain, AppStateBytes: g, Time: c.now}); err != nil {
		t.Fatal(err)
	}
	return c
}

func (c *chainT) open() {
	app, err := NewApp(c.db, Options{Now: func() time.Time { return c.now }})
	if err != nil {
		c.t.Fatal(err)
	}
	c.app = app
}

// block finalizes and commits one block holding txs.
func (c *chainT) block(txs ...[]byte) []*abci.ExecTxResult {
	c.t.Helper()
	c.now = c.now.Add(time.Second)
	h, _ := c.app.Height()
	res, err := c.app.FinalizeBlock(context.Background(), &abci.FinalizeBlockRequest{Txs: txs, Height: h + 1, Time: c.now})
	if err != nil {
		c.t.Fatalf("finalize: %v", err)
	}
	if _, err := c.app.Commit(context.Background(), &abci.CommitRequest{}); err != nil {
		c.t.Fatalf("commit: %v", err)
	}
	return res.TxResults
}

// body builds a body for op with the key's next sequence and a 5-minute expiry.
func (c *chainT) body(key identity.PrivateKey, op Op) Body {
	return Body{Chain: testChain, Seq: c.seqs[key.Public()], Expires: c.now.Unix() + 300, Op: op}
}

func (c *chainT) sign(key identity.PrivateKey, b Body) []byte {
	_, raw, err := SignTx(key, b)
	if err != nil {
		c.t.Fatal(err)
	}
	return raw
}

// do submits one op signed by key in its own block and returns the result.
func (c *chainT) do(key identity.PrivateKey, op Op) *abci.ExecTxResult {
	c.t.Helper()
	r := c.block(c.sign(key, c.body(key, op)))[0]
	if r.Code == 0 {
		c.seqs[key.Public()]++
	}
	return r
}

// must is do that fails the test unless the tx succeeds; it returns the id.
func (c *chainT) must(key identity.PrivateKey, op Op) uint64 {
	c.t.Helper()
	r := c.do(key, op)
	if r.Code != 0 {
		c.t.Fatalf("%s: code %d: %s", op.Kind(), r.Code, r.Log)
	}
	var res TxResult
	if err := wire.Unmarshal(r.Data, &res); err != nil {
		c.t.Fatal(err)
	}
	return res.ID
}

// refused fails the test unless the tx is refused with code want.
func (c *chainT) refused(r *abci.ExecTxResult, want Code) {
	c.t.Helper()
	if Code(r.Code) != want {
		c.t.Fatalf("got code %d (%s) %q, want %s", r.Code, Code(r.Code), r.Log, want)
	}
	if r.Log == "" {
		c.t.Fatal("refusal has no reason")
	}
}

func (c *chainT) query(path string, v any) Code {
	c.t.Helper()
	return c.queryData(path, nil, v)
}

// queryData asks the app both ways: plainly, and with a proof that it
// verifies against the committed app hash and answers from; the two must
// agree, so every ledger test also checks the proofs of what it reads.
func (c *chainT) queryData(path string, data []byte, v any) Code {
	c.t.Helper()
	r, err := c.app.Query(context.Background(), &abci.QueryRequest{Path: path, Data: data})
	if err != nil {
		c.t.Fatal(err)
	}
	pr, err := c.app.Query(context.Background(), &abci.QueryRequest{Path: path, Data: data, Prove: true})
	if err != nil {
		c.t.Fatal(err)
	}
	if pr.ProofOps == nil || len(pr.ProofOps.Ops) != 1 || pr.ProofOps.Ops[0].Type != ProofOpType || len(pr.Value) != 0 {
		c.t.Fatalf("proven answer to %s has no proof or also a value: %+v", path, pr)
	}
	h, root := c.app.Height()
	if pr.Height != h || r.Height != h {
		c.t.Fatalf("answers at heights %d and %d, committed %d", r.Height, pr.Height, h)
	}
	proven, err := VerifyAnswer(root, pr.Height, path, data, pr.ProofOps.Ops[0].Data)
	if Code(r.Code) != CodeOf(err) {
		c.t.Fatalf("%s: plain answer code %d, proven answer %v", path, r.Code, err)
	}
	if r.Code == 0 && !bytes.Equal(proven, r.Value) {
		c.t.Fatalf("%s: proven answer differs from the plain one", path)
	}
	if r.Code == 0 && v != nil {
		if err := wire.Unmarshal(r.Value, v); err != nil {
			c.t.Fatal(err)
		}
	}
	return Code(r.Code)
}

func newKey(t testing.TB) identity.PrivateKey {
	k, err := identity.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// world is a registered twin, farm and node with capacity.
type world struct {
	*chainT
	user, farmer, node identity.PrivateKey
	twin, farmTwin     uint64
	farm, nodeID       uint64
}

func newWorld(t testing.TB, params Params) *world {
	w := &world{chainT: newChainT(t, params), user: newKey(t), farmer: newKey(t), node: newKey(t)}
	w.twin = w.must(w.user, Op{TwinRegister: &TwinRegister{Name: "alice"}})
	w.farmTwin = w.must(w.farmer, Op{TwinRegister: &TwinRegister{}})
	w.farm = w.must(w.farmer, Op{FarmCreate: &FarmCreate{Name: "farm"}})
	w.nodeID = w.registerNode(w.node, w.farmer, w.farm)
	w.must(w.node, Op{NodeHeartbeat: &NodeHeartbeat{Types: spec.AllTypes, Capacity: spec.Resources{CPU: 2000, Memory: 1 << 30, Disk: 10 << 30}, Version: "test"}})
	return w
}

func (w *world) approval(farmer identity.PrivateKey, farm uint64, node identity.PublicKey) FarmApproval {
	body := FarmApprovalBody{Chain: testChain, Farm: farm, Node: node, Expires: w.now.Unix() + 3600}
	sig, err := farmer.Sign(TagFarmApprove, TxVersion, body)
	if err != nil {
		w.t.Fatal(err)
	}
	return FarmApproval{Body: body, Key: farmer.Public(), Sig: sig}
}

func (w *world) registerNode(node, farmer identity.PrivateKey, farm uint64) uint64 {
	seal, err := node.SealKey()
	if err != nil {
		w.t.Fatal(err)
	}
	return w.must(node, Op{NodeRegister: &NodeRegister{Farm: farm, SealKey: seal.Public(), Approval: w.approval(farmer, farm, node.Public())}})
}

func testSpec(t testing.TB, cpu uint64) []byte {
	s := &spec.Spec{Version: spec.Version, Workloads: []spec.Workload{
		{Name: "web", Type: spec.TypeContainer, Resources: spec.Resources{CPU: cpu, Memory: 64 << 20}},
		{Name: "data", Type: spec.TypeVolume, Resources: spec.Resources{Disk: 1 << 20}},
	}}
	b, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// createOp builds a contract create signed (spec and tx) by key for twin.
func (w *world) createOp(key identity.PrivateKey, twin, node uint64, raw []byte) Op {
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	d := DeploymentFor(testChain, twin, node, nonce, 1, raw, nil)
	sig, err := key.Sign(TagDeployment, TxVersion, d)
	if err != nil {
		w.t.Fatal(err)
	}
	return Op{ContractCreate: &ContractCreate{Node: node, Nonce: nonce, Spec: raw, SpecSig: Sig{Key: key.Public(), Sig: sig}}}
}

func (w *world) updateOp(key identity.PrivateKey, c *Contract, gen uint64, raw []byte) Op {
	d := DeploymentFor(testChain, c.Owner, c.Node, c.Nonce, gen, raw, nil)
	sig, err := key.Sign(TagDeployment, TxVersion, d)
	if err != nil {
		w.t.Fatal(err)
	}
	return Op{ContractUpdate: &ContractUpdate{Contract: c.ID, Generation: gen, Spec: raw, SpecSig: Sig{Key: key.Public(), Sig: sig}}}
}

func (w *world) contract(id uint64) *Contract {
	var c Contract
	if code := w.query(fmt.Sprintf("%s%d", QueryContract, id), &c); code != 0 {
		w.t.Fatalf("query contract %d: %s", id, code)
	}
	return &c
}

var _ = errors.New

func wireMarshal(v any) ([]byte, error) { return wire.Marshal(v) }
