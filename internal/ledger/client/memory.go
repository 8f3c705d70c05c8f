package client

import (
	"context"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/zerogrid/zerogrid/internal/ledger"
)

// Memory is a ledger in this process: a ledger.App on an in-memory
// database that makes a block every interval from the transactions its
// CheckTx admitted, as one validator would. It vouches for its own app
// hashes (there is nobody else to verify), so it serves tests and tools
// that own the ledger they read; answers still go through the same proof
// checks as over RPC.
type Memory struct {
	app      *ledger.App
	chain    string
	interval time.Duration
	now      func() time.Time

	mu      sync.Mutex
	mempool [][]byte
	blocks  []*memBlock // blocks[h-1] is block h
	roots   [][]byte    // roots[h] is the app hash after block h (0: genesis)
	times   []time.Time // times[h] is block h's time (0: genesis)
	closed  bool

	stop chan struct{}
	done chan struct{}
}

type memBlock struct {
	txs     [][]byte
	results []*abci.ExecTxResult
	events  []abci.Event
}

// MemoryOptions configure NewMemory.
type MemoryOptions struct {
	Chain    string        // default "zerogrid-memory"
	Params   ledger.Params // zero: ledger.DefaultParams()
	Interval time.Duration // between blocks; default 20 ms
	Now      func() time.Time
}

// NewMemory starts an in-process ledger; Close stops it.
func NewMemory(opts MemoryOptions) (*Memory, error) {
	if opts.Chain == "" {
		opts.Chain = "zerogrid-memory"
	}
	if opts.Params == (ledger.Params{}) {
		opts.Params = ledger.DefaultParams()
	}
	if opts.Interval <= 0 {
		opts.Interval = 20 * time.Millisecond
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	app, err := ledger.NewApp(dbm.NewMemDB(), ledger.Options{Now: opts.Now})
	if err != nil {
		return nil, err
	}
	g, err := ledger.MarshalGenesis(ledger.GenesisState{Params: opts.Params})
	if err != nil {
		return nil, err
	}
	t0 := opts.Now()
	if _, err := app.InitChain(context.Background(), &abci.InitChainRequest{ChainId: opts.Chain, AppStateBytes: g, Time: t0}); err != nil {
		return nil, err
	}
	_, root := app.Height()
	m := &Memory{app: app, chain: opts.Chain, interval: opts.Interval, now: opts.Now,
		roots: [][]byte{root}, times: []time.Time{t0}, stop: make(chan struct{}), done: make(chan struct{})}
	go m.run()
	return m, nil
}

// Client returns a client of this ledger.
func (m *Memory) Client(ctx context.Context, opts Options) (*Client, error) {
	return New(ctx, m, opts)
}

func (m *Memory) run() {
	defer close(m.done)
	t := time.NewTicker(m.interval)
	defer t.Stop()
	for {
		select {
		case <-m.stop:
			return
		case <-t.C:
			if err := m.block(); err != nil {
				panic(fmt.Sprintf("in-memory ledger: %v", err)) // the app's state is corrupt: nothing sane is left to do
			}
		}
	}
}

// block finalizes and commits one block of the mempool.
func (m *Memory) block() error {
	m.mu.Lock() // no admission while the block commits and the rest is rechecked
	defer m.mu.Unlock()
	txs := m.mempool
	m.mempool = nil
	h := int64(len(m.blocks) + 1)
	t := m.now()
	res, err := m.app.FinalizeBlock(context.Background(), &abci.FinalizeBlockRequest{Txs: txs, Height: h, Time: t})
	if err != nil {
		return err
	}
	if _, err := m.app.Commit(context.Background(), &abci.CommitRequest{}); err != nil {
		return err
	}
	m.blocks = append(m.blocks, &memBlock{txs: txs, results: res.TxResults, events: res.Events})
	m.roots = append(m.roots, res.AppHash)
	m.times = append(m.times, t)
	// As CometBFT rechecks its mempool after a commit: the app's mempool
	// view restarted from the committed state, so admit what is still
	// waiting again, and drop what no longer applies.
	kept := m.mempool[:0]
	for _, tx := range m.mempool {
		r, err := m.app.CheckTx(context.Background(), &abci.CheckTxRequest{Tx: tx, Type: abci.CHECK_TX_TYPE_RECHECK})
		if err != nil {
			return err
		}
		if r.Code == 0 {
			kept = append(kept, tx)
		}
	}
	m.mempool = kept
	return nil
}

func (m *Memory) Chain() string { return m.chain }

// Latest is the header of the last committed block, as CometBFT would
// have it: it commits to the state after the block before (height 0: no
// block yet).
func (m *Memory) Latest(context.Context) (Header, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return Header{}, ErrClosed
	}
	h := int64(len(m.blocks))
	if h == 0 {
		return Header{}, nil
	}
	root, t := m.roots[h-1], m.times[h]
	var b [8]byte
	binary.BigEndian.PutUint64(b[:], uint64(h))
	hash := sha256.Sum256(append(b[:], root...))
	return Header{Height: h, AppHash: root, Hash: hash[:], Time: t}, nil
}

func (m *Memory) Query(ctx context.Context, path string, data []byte, height int64) (*abci.QueryResponse, error) {
	if m.isClosed() {
		return nil, ErrClosed
	}
	return m.app.Query(ctx, &abci.QueryRequest{Path: path, Data: data, Height: height, Prove: true})
}

func (m *Memory) Broadcast(ctx context.Context, tx []byte) error {
	if m.isClosed() {
		return ErrClosed
	}
	// Admission and the mempool change together, so that a recheck after
	// a commit sees every admitted transaction.
	m.mu.Lock()
	defer m.mu.Unlock()
	res, err := m.app.CheckTx(ctx, &abci.CheckTxRequest{Tx: tx})
	if err != nil {
		return err
	}
	if res.Code != 0 {
		return &ledger.Rejection{Code: ledger.Code(res.Code), Reason: res.Log}
	}
	m.mempool = append(m.mempool, tx)
	return nil
}

func (m *Memory) LatestHeight(context.Context) (int64, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return int64(len(m.blocks)), nil
}

func (m *Memory) Block(_ context.Context, h int64) (*Block, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if h < 1 || h > int64(len(m.blocks)) {
		return nil, fmt.Errorf("block %d: not committed (latest %d)", h, len(m.blocks))
	}
	b := m.blocks[h-1]
	return newBlock(h, b.txs, b.results, b.events)
}

func (m *Memory) Reports(_ context.Context, contract uint64) ([][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out [][]byte
	for _, b := range m.blocks {
		for i, raw := range b.txs {
			if b.results[i].Code != 0 {
				continue
			}
			tx, err := ledger.DecodeTx(raw)
			if err == nil && tx.Body.Op.ContractReport != nil && tx.Body.Op.ContractReport.Contract == contract {
				out = append(out, raw)
			}
		}
	}
	return out, nil
}

func (m *Memory) Status(ctx context.Context) (*Status, error) {
	h, err := m.Latest(ctx)
	if err != nil {
		return nil, err
	}
	return &Status{Chain: m.chain, Height: h.Height, Hash: fmt.Sprintf("%X", h.Hash), AppHash: fmt.Sprintf("%X", h.AppHash),
		BlockTime: h.Time.UTC().Format(time.RFC3339), Verified: true}, nil
}

func (m *Memory) isClosed() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.closed
}

// Close stops making blocks. It is idempotent.
func (m *Memory) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	m.mu.Unlock()
	close(m.stop)
	<-m.done
	return nil
}

var _ Backend = (*Memory)(nil)
