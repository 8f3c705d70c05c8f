package main

import (
	"context"
	"sync"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
)

// meteredApp times the ABCI calls that the load drives. CometBFT calls an
// in-process app through one mutex shared by all its connections, so the sum
// of these durations is how long the app kept every other call waiting.
type meteredApp struct {
	abci.Application

	mu       sync.Mutex
	check    callStats
	recheck  callStats
	finalize callStats
	commit   callStats
	blocks   []appBlock
}

// callStats accumulates one kind of call.
type callStats struct {
	Calls int64         `json:"calls"`
	Total time.Duration `json:"total_ns"`
	Max   time.Duration `json:"max_ns"`
}

func (s *callStats) add(d time.Duration) {
	s.Calls++
	s.Total += d
	s.Max = max(s.Max, d)
}

// appBlock is one block as the app executed it.
type appBlock struct {
	Height   int64
	Txs      int
	Finalize time.Duration
	Commit   time.Duration
}

// appStats is what the app did between reset and snapshot.
type appStats struct {
	Check    callStats  `json:"check_tx"`
	Recheck  callStats  `json:"recheck_tx"`
	Finalize callStats  `json:"finalize_block"`
	Commit   callStats  `json:"commit"`
	Blocks   []appBlock `json:"-"`
}

func (m *meteredApp) CheckTx(ctx context.Context, req *abci.CheckTxRequest) (*abci.CheckTxResponse, error) {
	start := time.Now()
	res, err := m.Application.CheckTx(ctx, req)
	d := time.Since(start)
	m.mu.Lock()
	if req.Type == abci.CHECK_TX_TYPE_RECHECK {
		m.recheck.add(d)
	} else {
		m.check.add(d)
	}
	m.mu.Unlock()
	return res, err
}

func (m *meteredApp) FinalizeBlock(ctx context.Context, req *abci.FinalizeBlockRequest) (*abci.FinalizeBlockResponse, error) {
	start := time.Now()
	res, err := m.Application.FinalizeBlock(ctx, req)
	d := time.Since(start)
	m.mu.Lock()
	m.finalize.add(d)
	m.blocks = append(m.blocks, appBlock{Height: req.Height, Txs: len(req.Txs), Finalize: d})
	m.mu.Unlock()
	return res, err
}

func (m *meteredApp) Commit(ctx context.Context, req *abci.CommitRequest) (*abci.CommitResponse, error) {
	start := time.Now()
	res, err := m.Application.Commit(ctx, req)
	d := time.Since(start)
	m.mu.Lock()
	m.commit.add(d)
	if n := len(m.blocks); n > 0 {
		m.blocks[n-1].Commit = d
	}
	m.mu.Unlock()
	return res, err
}

// reset zeroes the counters.
func (m *meteredApp) reset() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.check, m.recheck, m.finalize, m.commit, m.blocks = callStats{}, callStats{}, callStats{}, callStats{}, nil
}

// snapshot copies the counters.
func (m *meteredApp) snapshot() appStats {
	m.mu.Lock()
	defer m.mu.Unlock()
	return appStats{Check: m.check, Recheck: m.recheck, Finalize: m.finalize, Commit: m.commit,
		Blocks: append([]appBlock(nil), m.blocks...)}
}
