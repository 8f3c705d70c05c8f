package ledger

import (
	"bytes"
	"context"
	"fmt"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/spec"
)

// FuzzDecodeTx feeds arbitrary bytes to CheckTx and FinalizeBlock: they
// must refuse with a reason, never panic, and never change state.
func FuzzDecodeTx(f *testing.F) {
	c := newChainT(f, DefaultParams())
	key := fixedKey(f, 1)
	f.Add(c.sign(key, Body{Chain: testChain, Expires: c.now.Unix() + 60, Op: Op{TwinRegister: &TwinRegister{}}}))
	f.Add(c.sign(key, Body{Chain: testChain, Seq: 3, Expires: 1, Op: Op{NameClaim: &NameClaim{Name: "x"}}}))
	f.Add([]byte{0xa2, 0x64})
	f.Fuzz(func(t *testing.T, data []byte) {
		c := newChainT(t, DefaultParams())
		r, err := c.app.CheckTx(context.Background(), &abci.CheckTxRequest{Tx: data})
		if err != nil {
			t.Fatal(err)
		}
		if r.Code != 0 && r.Log == "" {
			t.Fatal("refusal without a reason")
		}
		res := c.block(data)[0]
		if res.Code != 0 {
			if res.Log == "" {
				t.Fatal("refusal without a reason")
			}
			c2 := newChainT(t, DefaultParams())
			c2.block()
			_, h1 := c.app.Height()
			_, h2 := c2.app.Height()
			if !bytes.Equal(h1, h2) {
				t.Fatal("a refused transaction changed state")
			}
		}
	})
}

func fixedKey(t testing.TB, n byte) identity.PrivateKey {
	k, err := identity.NewPrivateKey(bytes.Repeat([]byte{n}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// FuzzApplySequence interprets the input as a program of transactions by a
// small cast of keys, runs it on two independent apps, and checks that they
// agree on every app hash and that reservations always match the contracts
// that hold them.
func FuzzApplySequence(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12})
	f.Add([]byte{0, 16, 32, 3, 36, 5, 22, 7, 56, 9, 43, 11, 77, 6, 6, 8})
	f.Fuzz(func(t *testing.T, prog []byte) {
		if len(prog) > 64 {
			prog = prog[:64]
		}
		a, b := newFuzzWorld(t), newFuzzWorld(t)
		for i := 0; i+1 < len(prog); i += 2 {
			raw := a.txFor(prog[i], prog[i+1])
			ra := a.block(raw)[0]
			rb := b.block(raw)[0]
			if ra.Code != rb.Code {
				t.Fatalf("step %d: codes differ %d vs %d", i, ra.Code, rb.Code)
			}
			if ra.Code == 0 {
				a.seqs[a.signerOf(prog[i])]++
			}
			_, ha := a.app.Height()
			_, hb := b.app.Height()
			if !bytes.Equal(ha, hb) {
				t.Fatalf("step %d: app hashes diverge", i)
			}
			a.checkReservations()
		}
	})
}

type fuzzWorld struct {
	*chainT
	keys []identity.PrivateKey // 0 user, 1 farmer, 2 node, 3 mallory
}

func newFuzzWorld(t testing.TB) *fuzzWorld {
	p := DefaultParams()
	p.AcceptDeadlineBlocks = 4
	w := &fuzzWorld{chainT: newChainT(t, p)}
	for i := byte(1); i <= 4; i++ {
		w.keys = append(w.keys, fixedKey(t, i))
	}
	return w
}

func (w *fuzzWorld) signerOf(op byte) identity.PublicKey {
	return w.keys[int(op>>4)%len(w.keys)].Public()
}

// txFor builds a transaction: the low nibble of op picks the operation, the
// high nibble the signer; arg picks ids and amounts.
func (w *fuzzWorld) txFor(op, arg byte) []byte {
	key := w.keys[int(op>>4)%len(w.keys)]
	id := uint64(arg%4) + 1
	var o Op
	switch op % 16 {
	case 0:
		o.TwinRegister = &TwinRegister{}
	case 1:
		o.FarmCreate = &FarmCreate{Name: "f"}
	case 2:
		seal, _ := key.SealKey()
		ww := &world{chainT: w.chainT}
		o.NodeRegister = &NodeRegister{Farm: id, SealKey: seal.Public(), Approval: ww.approval(w.keys[1], id, key.Public())}
	case 3:
		o.NodeHeartbeat = &NodeHeartbeat{Types: spec.AllTypes, Capacity: spec.Resources{CPU: uint64(arg) * 100, Memory: 1 << 30, Disk: 1 << 30}}
	case 4, 5:
		ww := &world{chainT: w.chainT}
		o = ww.createOp(key, id, uint64(arg%2)+1, testSpec(w.t, uint64(arg)*10))
		o.ContractCreate.Nonce = []byte(fmt.Sprintf("nonce-%03d", arg))
		d := DeploymentFor(testChain, id, o.ContractCreate.Node, o.ContractCreate.Nonce, 1, o.ContractCreate.Spec, nil)
		sig, _ := key.Sign(TagDeployment, TxVersion, d)
		o.ContractCreate.SpecSig.Sig = sig
	case 6:
		o.ContractAccept = &ContractAccept{Contract: id, Generation: uint64(arg%2) + 1}
	case 7:
		o.ContractCancel = &ContractCancel{Contract: id}
	case 8:
		o.ContractReport = &ContractReport{Contract: id, Generation: 1, Workloads: []WorkloadStatus{{Name: "web", State: WorkloadReady}, {Name: "data", State: WorkloadReady}}}
	case 9:
		o.NameClaim = &NameClaim{Name: fmt.Sprintf("n%d", arg%3)}
	case 10:
		o.NameRelease = &NameRelease{Name: fmt.Sprintf("n%d", arg%3)}
	case 11:
		var c Contract
		if found, _ := getObj(w.app.store, kContract(id), &c); found {
			ww := &world{chainT: w.chainT}
			o = ww.updateOp(key, &c, c.Generation+uint64(arg%2), testSpec(w.t, uint64(arg)*10))
		} else {
			o.ContractCancel = &ContractCancel{Contract: id}
		}
	case 12:
		o.NameAuthorize = &NameAuthorize{Name: fmt.Sprintf("n%d", arg%3), Keys: []identity.PublicKey{w.keys[arg%4].Public()}}
	case 14:
		o.FarmRemoveNode = &FarmRemoveNode{Node: id}
	case 13:
		o.NodeHeartbeat = &NodeHeartbeat{Types: spec.AllTypes, Capacity: spec.Resources{CPU: 1000, Memory: 1 << 30, Disk: 1 << 30},
			Overlay: provenOverlay(w.t, [32]byte(bytes.Repeat([]byte{byte(arg%3) + 1}, 32)), key.Public(), fmt.Sprintf("10.0.0.%d:51820", arg%5+1))}
	default:
		o.TwinRevokeKey = &TwinRevokeKey{Key: w.keys[arg%4].Public()}
	}
	return w.sign(key, w.body(key, o))
}

func (w *fuzzWorld) checkReservations() {
	counters, _ := loadCounters(w.app.store)
	want := map[uint64]spec.Resources{}
	for id := uint64(1); id <= counters.Contract; id++ {
		c, err := loadContract(w.app.store, id)
		if err != nil {
			w.t.Fatal(err)
		}
		if !c.Live() && c.Reserved != (spec.Resources{}) {
			w.t.Fatalf("ended contract %d still reserves %v", id, c.Reserved)
		}
		want[c.Node], _ = want[c.Node].Add(c.Reserved)
	}
	for id := uint64(1); id <= counters.Node; id++ {
		n, err := loadNode(w.app.store, id)
		if err != nil {
			w.t.Fatal(err)
		}
		if n.Reserved != want[id] {
			w.t.Fatalf("node %d reserves %v, contracts hold %v", id, n.Reserved, want[id])
		}
	}
}
