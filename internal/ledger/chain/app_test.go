package chain

import (
	"bytes"
	"context"
	"crypto/sha256"
	"fmt"
	"maps"
	"slices"
	"sync"

	abcitypes "github.com/cometbft/cometbft/abci/types"
)

// kvApp is a tiny ABCI 2.0 application for tests: txs are "key=value", the
// state is a map, and the app hash is SHA-256 over the sorted pairs. It keeps
// state in memory, so a fresh kvApp forces CometBFT to replay every block.
type kvApp struct {
	abcitypes.BaseApplication

	mu         sync.Mutex
	state      map[string]string
	pending    map[string]string
	height     int64 // last committed
	appHash    []byte
	nextHeight int64
}

func newKVApp() *kvApp {
	return &kvApp{state: map[string]string{}}
}

func parseKV(tx []byte) (key, value string, ok bool) {
	k, v, ok := bytes.Cut(tx, []byte("="))
	if !ok || len(k) == 0 {
		return "", "", false
	}
	return string(k), string(v), true
}

func (a *kvApp) Info(context.Context, *abcitypes.InfoRequest) (*abcitypes.InfoResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return &abcitypes.InfoResponse{
		Data:             fmt.Sprintf("keys=%d", len(a.state)),
		LastBlockHeight:  a.height,
		LastBlockAppHash: a.appHash,
	}, nil
}

func (a *kvApp) CheckTx(_ context.Context, req *abcitypes.CheckTxRequest) (*abcitypes.CheckTxResponse, error) {
	if _, _, ok := parseKV(req.Tx); !ok {
		return &abcitypes.CheckTxResponse{Code: 1, Log: "want key=value"}, nil
	}
	return &abcitypes.CheckTxResponse{Code: abcitypes.CodeTypeOK}, nil
}

func (a *kvApp) FinalizeBlock(_ context.Context, req *abcitypes.FinalizeBlockRequest) (*abcitypes.FinalizeBlockResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	next := maps.Clone(a.state)
	results := make([]*abcitypes.ExecTxResult, len(req.Txs))
	for i, tx := range req.Txs {
		k, v, ok := parseKV(tx)
		if !ok {
			results[i] = &abcitypes.ExecTxResult{Code: 1}
			continue
		}
		next[k] = v
		results[i] = &abcitypes.ExecTxResult{Code: abcitypes.CodeTypeOK, Events: []abcitypes.Event{{
			Type:       "kv",
			Attributes: []abcitypes.EventAttribute{{Key: "key", Value: k, Index: true}},
		}}}
	}
	a.pending, a.nextHeight = next, req.Height
	return &abcitypes.FinalizeBlockResponse{TxResults: results, AppHash: hashState(next)}, nil
}

func (a *kvApp) Commit(context.Context, *abcitypes.CommitRequest) (*abcitypes.CommitResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.state, a.height, a.appHash = a.pending, a.nextHeight, hashState(a.pending)
	return &abcitypes.CommitResponse{}, nil
}

func (a *kvApp) Query(_ context.Context, req *abcitypes.QueryRequest) (*abcitypes.QueryResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	v, ok := a.state[string(req.Data)]
	if !ok {
		return &abcitypes.QueryResponse{Code: 1, Log: "not found", Height: a.height}, nil
	}
	return &abcitypes.QueryResponse{Key: req.Data, Value: []byte(v), Height: a.height}, nil
}

func hashState(m map[string]string) []byte {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	h := sha256.New()
	for _, k := range keys {
		fmt.Fprintf(h, "%d:%s%d:%s", len(k), k, len(m[k]), m[k])
	}
	return h.Sum(nil)
}
