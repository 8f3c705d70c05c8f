package ledger

import (
	"bytes"
	"context"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"
)

// TestPrepareProposalOrdersSequences gives the proposer a mempool holding a
// signer's transactions out of order, as gossip from several peers can: the
// proposal puts them in sequence order and the whole block applies.
func TestPrepareProposalOrdersSequences(t *testing.T) {
	t.Parallel()
	c := newChainT(t, DefaultParams())
	a, b := newKey(t), newKey(t)
	mk := func(seq uint64, op Op) []byte {
		return c.sign(a, Body{Chain: testChain, Seq: seq, Expires: c.now.Unix() + 60, Op: op})
	}
	a0 := mk(0, Op{TwinRegister: &TwinRegister{}})
	a1 := mk(1, Op{NameClaim: &NameClaim{Name: "one"}})
	a2 := mk(2, Op{NameClaim: &NameClaim{Name: "two"}})
	b0 := c.sign(b, Body{Chain: testChain, Expires: c.now.Unix() + 60, Op: Op{TwinRegister: &TwinRegister{}}})
	junk := []byte("junk")
	mempool := [][]byte{a2, b0, junk, a0, a1}
	res, err := c.app.PrepareProposal(context.Background(), &abci.PrepareProposalRequest{Txs: mempool, MaxTxBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	want := [][]byte{a0, b0, junk, a1, a2}
	for i := range want {
		if !bytes.Equal(res.Txs[i], want[i]) {
			t.Fatalf("slot %d holds the wrong transaction", i)
		}
	}
	results := c.block(res.Txs...)
	for i, r := range results {
		if i == 2 {
			c.refused(r, CodeMalformed)
			continue
		}
		if r.Code != 0 {
			t.Fatalf("tx %d: %s", i, r.Log)
		}
	}
	small, _ := c.app.PrepareProposal(context.Background(), &abci.PrepareProposalRequest{Txs: mempool, MaxTxBytes: int64(len(a0) + len(b0))})
	if len(small.Txs) != 2 {
		t.Fatalf("MaxTxBytes not honoured: %d txs", len(small.Txs))
	}
}

// TestSignatureCacheNeverAdmitsForgeries checks that a transaction CheckTx
// verified and one it never saw are judged alike in FinalizeBlock, and that
// altered bytes never ride on a cached verification.
func TestSignatureCacheNeverAdmitsForgeries(t *testing.T) {
	t.Parallel()
	c := newChainT(t, DefaultParams())
	k := newKey(t)
	good := c.sign(k, Body{Chain: testChain, Expires: c.now.Unix() + 60, Op: Op{TwinRegister: &TwinRegister{Name: "a"}}})
	if r, _ := c.app.CheckTx(context.Background(), &abci.CheckTxRequest{Tx: good}); r.Code != 0 {
		t.Fatalf("checktx: %s", r.Log)
	}
	tx, err := DecodeTx(good)
	if err != nil {
		t.Fatal(err)
	}
	tx.Body.Op.TwinRegister.Name = "b" // the old signatures no longer cover it
	forged := mustMarshal(t, tx)
	rs := c.block(forged, good)
	c.refused(rs[0], CodeBadSignature)
	if rs[1].Code != 0 {
		t.Fatalf("cached good tx: %s", rs[1].Log)
	}
}
