package ledger

import (
	"bytes"
	"context"
	"testing"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"
)

// TestStateSurvivesRestart reopens the app on the same database (goleveldb
// on disk) and checks height, app hash and state are all still there.
func TestStateSurvivesRestart(t *testing.T) {
	t.Parallel()
	db, err := dbm.NewGoLevelDB("state", t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w := &world{chainT: newChainTDB(t, DefaultParams(), db), user: newKey(t)}
	w.twin = w.must(w.user, Op{TwinRegister: &TwinRegister{Name: "persist"}})
	w.must(w.user, Op{NameClaim: &NameClaim{Name: "kept"}})
	h1, hash1 := w.app.Height()

	w.open() // a new App over the same DB, as after a process restart
	info, err := w.app.Info(context.Background(), &abci.InfoRequest{})
	if err != nil {
		t.Fatal(err)
	}
	if info.LastBlockHeight != h1 || !bytes.Equal(info.LastBlockAppHash, hash1) {
		t.Fatalf("after restart: height %d hash %x, want %d %x", info.LastBlockHeight, info.LastBlockAppHash, h1, hash1)
	}
	var nc NameContract
	if code := w.query(QueryName+"kept", &nc); code != 0 || nc.Owner != w.twin {
		t.Fatalf("name lost across restart: %s %+v", code, nc)
	}
	// The chain id and sequence survived: the next tx applies.
	w.must(w.user, Op{NameRelease: &NameRelease{Name: "kept"}})
}

// TestDeterministicAppHash feeds the same blocks to two apps and checks they
// agree on every app hash, and that a different block gives another hash.
func TestDeterministicAppHash(t *testing.T) {
	t.Parallel()
	b := newChainT(t, DefaultParams())
	a2 := newChainT(t, DefaultParams())
	a2.now = b.now
	key := newKey(t)
	var txs [][]byte
	for i, op := range []Op{{TwinRegister: &TwinRegister{}}, {NameClaim: &NameClaim{Name: "x"}}, {FarmCreate: &FarmCreate{Name: "f"}}} {
		body := Body{Chain: testChain, Seq: uint64(i), Expires: b.now.Unix() + 100, Op: op}
		txs = append(txs, b.sign(key, body))
	}
	for _, tx := range txs {
		b.block(tx)
		a2.block(tx)
		_, hb := b.app.Height()
		_, ha := a2.app.Height()
		if !bytes.Equal(ha, hb) {
			t.Fatalf("app hashes diverge: %x vs %x", ha, hb)
		}
	}
	_, before := b.app.Height()
	b.block()
	a2.block(txs[0]) // a replay: refused, but the block differs in no state
	_, hb := b.app.Height()
	_, ha := a2.app.Height()
	if !bytes.Equal(ha, hb) {
		t.Fatalf("a refused tx changed the app hash: %x vs %x", ha, hb)
	}
	if !bytes.Equal(before, hb) {
		t.Fatal("a block that wrote nothing changed the app hash: it must commit to the state alone")
	}
	body := Body{Chain: testChain, Seq: 3, Expires: b.now.Unix() + 100, Op: Op{NameClaim: &NameClaim{Name: "y"}}}
	b.block(b.sign(key, body))
	a2.block()
	_, hb = b.app.Height()
	_, ha = a2.app.Height()
	if bytes.Equal(ha, hb) {
		t.Fatal("different state, same app hash")
	}
}

// TestCheckTxAdmission checks the mempool gate: a sequence of dependent
// transactions from one key is admitted in order, a replay is not.
func TestCheckTxAdmission(t *testing.T) {
	t.Parallel()
	c := newChainT(t, DefaultParams())
	key := newKey(t)
	check := func(seq uint64, op Op) uint32 {
		raw := c.sign(key, Body{Chain: testChain, Seq: seq, Expires: c.now.Unix() + 60, Op: op})
		r, err := c.app.CheckTx(context.Background(), &abci.CheckTxRequest{Tx: raw, Type: abci.CHECK_TX_TYPE_CHECK})
		if err != nil {
			t.Fatal(err)
		}
		return r.Code
	}
	if code := check(0, Op{TwinRegister: &TwinRegister{}}); code != 0 {
		t.Fatalf("register: %d", code)
	}
	if code := check(1, Op{NameClaim: &NameClaim{Name: "a"}}); code != 0 {
		t.Fatalf("dependent tx: %d", code)
	}
	if code := check(1, Op{NameClaim: &NameClaim{Name: "b"}}); Code(code) != CodeBadSequence {
		t.Fatalf("reused sequence: %d", code)
	}
	r, _ := c.app.CheckTx(context.Background(), &abci.CheckTxRequest{Tx: []byte{0xff, 0x00}})
	if Code(r.Code) != CodeMalformed || r.Log == "" {
		t.Fatalf("garbage: %+v", r)
	}
}
