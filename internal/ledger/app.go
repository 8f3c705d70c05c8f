package ledger

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/zerogrid/zerogrid/internal/ledger/trie"
)

// AppVersion is the application protocol version reported to CometBFT.
const AppVersion = 1

// App is the zerogrid ABCI application. It is safe for concurrent use:
// CometBFT's connections are serialized by one mutex.
type App struct {
	abci.BaseApplication

	mu     sync.Mutex
	store  *store
	log    *slog.Logger
	now    func() time.Time
	chain  string
	params Params

	check    *overlay    // mempool view: committed state plus accepted CheckTx writes
	block    *overlay    // the block being finalized
	next     meta        // meta of the block being finalized
	nextTree *trie.Tree  // state after the block being finalized
	verified verifiedSet // txs whose signatures CheckTx checked
}

// Options configure an App.
type Options struct {
	Logger *slog.Logger
	Now    func() time.Time // clock for CheckTx expiry; default time.Now
	// KeepHeights is how many recent heights queries can read
	// (default DefaultKeepHeights).
	KeepHeights int
}

// NewApp opens the application state in db.
func NewApp(db dbm.DB, opts Options) (*App, error) {
	st, err := openStore(db, opts.KeepHeights)
	if err != nil {
		return nil, err
	}
	a := &App{store: st, log: opts.Logger, now: opts.Now, params: DefaultParams(), verified: verifiedSet{}}
	if a.log == nil {
		a.log = slog.New(slog.DiscardHandler)
	}
	if a.now == nil {
		a.now = time.Now
	}
	if _, err := getObj(st, kParams, &a.params); err != nil {
		return nil, err
	}
	var chain string
	if _, err := getObj(st, kChain, &chain); err != nil {
		return nil, err
	}
	a.chain = chain
	a.check = newOverlay(st)
	return a, nil
}

// Info reports the last committed height and app hash.
func (a *App) Info(context.Context, *abci.InfoRequest) (*abci.InfoResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return &abci.InfoResponse{
		Data: "zerogrid", Version: "1", AppVersion: AppVersion,
		LastBlockHeight: a.store.meta.Height, LastBlockAppHash: a.store.meta.AppHash,
	}, nil
}

// InitChain stores the chain id and genesis params as state at height 0.
func (a *App) InitChain(_ context.Context, req *abci.InitChainRequest) (*abci.InitChainResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	g, err := ParseGenesis(req.AppStateBytes)
	if err != nil {
		return nil, err
	}
	o := newOverlay(a.store)
	if err := putObj(o, kParams, g.Params); err != nil {
		return nil, err
	}
	if err := putObj(o, kChain, req.ChainId); err != nil {
		return nil, err
	}
	tree, err := a.store.apply(o.writes)
	if err != nil {
		return nil, err
	}
	root := tree.Hash()
	m := meta{Height: 0, Time: req.Time.Unix(), AppHash: root[:]}
	if err := a.store.commit(o.writes, m, tree); err != nil {
		return nil, err
	}
	a.chain, a.params = req.ChainId, g.Params
	a.check = newOverlay(a.store)
	a.log.Info("genesis", "chain", req.ChainId, "accept_deadline_blocks", g.Params.AcceptDeadlineBlocks)
	return &abci.InitChainResponse{AppHash: m.AppHash}, nil
}

// CheckTx admits a transaction to the mempool only if it would apply now,
// after the transactions already admitted.
func (a *App) CheckTx(_ context.Context, req *abci.CheckTxRequest) (*abci.CheckTxResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	tx, err := a.verified.decode(req.Tx, true)
	if err == nil {
		child := newOverlay(a.check)
		ctx := &execCtx{st: child, chain: a.chain, params: a.params,
			height: a.store.meta.Height + 1, now: a.now().Unix()}
		if err = apply(ctx, tx); err == nil {
			child.mergeInto(a.check)
		}
	}
	if err != nil {
		if errors.Is(err, ErrCorruptState) {
			return nil, err
		}
		return &abci.CheckTxResponse{Code: uint32(CodeOf(err)), Codespace: Codespace, Log: ReasonOf(err)}, nil
	}
	return &abci.CheckTxResponse{Code: 0}, nil
}

// PrepareProposal keeps CometBFT's choice of transactions but puts each
// signer's transactions in sequence order: a mempool that received them
// from several peers may hold them out of order, and a block must not fail
// sequence n+1 because n comes after it. Only the positions a signer's
// transactions already occupy are reused, so nothing else moves.
func (a *App) PrepareProposal(_ context.Context, req *abci.PrepareProposalRequest) (*abci.PrepareProposalResponse, error) {
	txs := orderBySequence(req.Txs)
	var size int64
	for i, tx := range txs {
		size += int64(len(tx))
		if req.MaxTxBytes > 0 && size > req.MaxTxBytes {
			txs = txs[:i]
			break
		}
	}
	return &abci.PrepareProposalResponse{Txs: txs}, nil
}

// ProcessProposal accepts every proposal: a transaction that fails is
// recorded with its code by FinalizeBlock, deterministically.
func (a *App) ProcessProposal(context.Context, *abci.ProcessProposalRequest) (*abci.ProcessProposalResponse, error) {
	return &abci.ProcessProposalResponse{Status: abci.PROCESS_PROPOSAL_STATUS_ACCEPT}, nil
}

// FinalizeBlock applies a block's transactions, then expires contracts
// whose acceptance deadline passed, and returns the new app hash.
func (a *App) FinalizeBlock(_ context.Context, req *abci.FinalizeBlockRequest) (*abci.FinalizeBlockResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if want := a.store.meta.Height + 1; req.Height != want {
		return nil, fmt.Errorf("ledger: finalize height %d, expected %d", req.Height, want)
	}
	a.block = newOverlay(a.store)
	now := req.Time.Unix()
	results := make([]*abci.ExecTxResult, len(req.Txs))
	for i, raw := range req.Txs {
		r, err := a.deliver(raw, req.Height, now)
		if err != nil {
			return nil, err
		}
		results[i] = r
	}
	events, err := a.expire(req.Height, now)
	if err != nil {
		return nil, err
	}
	if a.nextTree, err = a.store.apply(a.block.writes); err != nil {
		return nil, err
	}
	root := a.nextTree.Hash()
	a.next = meta{Height: req.Height, Time: now, AppHash: root[:]}
	return &abci.FinalizeBlockResponse{TxResults: results, Events: events, AppHash: a.next.AppHash}, nil
}

// deliver applies one transaction; only state corruption is an error.
func (a *App) deliver(raw []byte, height, now int64) (*abci.ExecTxResult, error) {
	tx, err := a.verified.decode(raw, false)
	var ctx *execCtx
	if err == nil {
		ctx = &execCtx{st: newOverlay(a.block), chain: a.chain, params: a.params, height: height, now: now}
		err = apply(ctx, tx)
	}
	if err != nil {
		if errors.Is(err, ErrCorruptState) {
			return nil, err
		}
		return &abci.ExecTxResult{Code: uint32(CodeOf(err)), Codespace: Codespace, Log: ReasonOf(err)}, nil
	}
	ctx.st.mergeInto(a.block)
	id, err := tx.ID()
	if err != nil {
		return nil, err
	}
	ctx.emit("tx", "kind", tx.Body.Op.Kind(), "signer", tx.Signer().String(), "id", hex.EncodeToString(id[:]))
	return &abci.ExecTxResult{Code: 0, Data: ctx.result, Events: ctx.events}, nil
}

// expire ends contracts still unaccepted at their deadline height.
func (a *App) expire(height, now int64) ([]abci.Event, error) {
	ctx := &execCtx{st: newOverlay(a.block), chain: a.chain, params: a.params, height: height, now: now}
	end := kDeadline(height+1, 0)
	var due []uint64
	err := a.store.scan("deadline/", "", func(key string, _ []byte) (bool, error) {
		if key >= end {
			return false, nil
		}
		due = append(due, beUint64(key[len(key)-8:]))
		return true, nil
	})
	if err != nil {
		return nil, err
	}
	for _, id := range due {
		c, err := loadContract(ctx.st, id)
		if err != nil {
			return nil, fmt.Errorf("%w: deadline for missing contract %d", ErrCorruptState, id)
		}
		if c.State != StateCreated {
			ctx.st.del(kDeadline(c.Deadline, id))
			continue
		}
		if err := endContract(ctx, c, StateExpired, fmt.Sprintf("node %d did not accept it within %d blocks", c.Node, a.params.AcceptDeadlineBlocks)); err != nil {
			return nil, err
		}
		ctx.emitContract(c, "expire")
	}
	ctx.st.mergeInto(a.block)
	return ctx.events, nil
}

// Commit makes the finalized block's state durable.
func (a *App) Commit(context.Context, *abci.CommitRequest) (*abci.CommitResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.block == nil {
		return nil, errors.New("ledger: commit without a finalized block")
	}
	if err := a.store.commit(a.block.writes, a.next, a.nextTree); err != nil {
		return nil, err
	}
	a.block, a.nextTree = nil, nil
	a.check = newOverlay(a.store)
	return &abci.CommitResponse{}, nil
}

// Height and AppHash of the last committed block.
func (a *App) Height() (int64, []byte) {
	a.mu.Lock()
	defer a.mu.Unlock()
	return a.store.meta.Height, append([]byte(nil), a.store.meta.AppHash...)
}
