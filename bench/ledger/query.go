package main

import (
	"context"
	"fmt"
	"time"

	rpcclient "github.com/cometbft/cometbft/rpc/client"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
)

// queryView is what reading one contract costs after the load: a plain
// abci_query (the value, no proof: a reader that trusts its validator)
// against the client's verified read (a proof, checked against the app
// hash of a header the light client verified, and a check of the
// validator's latest height; a read after a new block also pays for
// verifying its header).
type queryView struct {
	Contract   uint64  `json:"contract"`
	Plain      latency `json:"plain_abci_query_ms"`
	Verified   latency `json:"verified_read_ms"`
	ValueBytes int     `json:"value_bytes"`
	ProofBytes int     `json:"proof_bytes"`
}

// measureQueries reads contract id n times each way, one read at a time,
// alternating the two so that both see the same machine.
func measureQueries(ctx context.Context, c *client.Client, id uint64, n int) (*queryView, error) {
	raw, err := rpchttp.New(c.URL())
	if err != nil {
		return nil, err
	}
	path := fmt.Sprintf("%s%d", ledger.QueryContract, id)
	v := &queryView{Contract: id}
	var plain, verified []time.Duration
	for range n {
		t0 := time.Now()
		res, err := raw.ABCIQuery(ctx, path, nil)
		if err != nil || res.Response.Code != 0 {
			return nil, fmt.Errorf("plain query %s: %v %s", path, err, res.Response.Log)
		}
		plain = append(plain, time.Since(t0))
		v.ValueBytes = len(res.Response.Value)

		t0 = time.Now()
		if _, err := c.Contract(ctx, id); err != nil {
			return nil, fmt.Errorf("verified read of contract %d: %w", id, err)
		}
		verified = append(verified, time.Since(t0))
	}
	proven, err := raw.ABCIQueryWithOptions(ctx, path, nil, rpcclient.ABCIQueryOptions{Prove: true})
	if err == nil && proven.Response.ProofOps != nil && len(proven.Response.ProofOps.Ops) == 1 {
		v.ProofBytes = len(proven.Response.ProofOps.Ops[0].Data)
	}
	v.Plain, v.Verified = summarize(plain), summarize(verified)
	return v, nil
}
