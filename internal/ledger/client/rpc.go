package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	"github.com/cometbft/cometbft/light"
	lprovider "github.com/cometbft/cometbft/light/provider"
	lhttp "github.com/cometbft/cometbft/light/provider/http"
	lstore "github.com/cometbft/cometbft/light/store/db"
	rpcclient "github.com/cometbft/cometbft/rpc/client"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	ctypes "github.com/cometbft/cometbft/rpc/core/types"

	"github.com/zerogrid/zerogrid/internal/ledger"
)

// ErrUntrusted wraps every failure to verify what a validator served: a
// header the light client refuses, a proof that does not check, an answer
// for another height than asked. Such an answer is never acted on.
var ErrUntrusted = errors.New("the ledger's answer does not verify")

// trustSaveEvery bounds how often a moving trust root is written to disk.
const trustSaveEvery = 30 * time.Second

// rpcBackend talks to a validator's CometBFT RPC and verifies headers
// with CometBFT's light client from a trust root.
type rpcBackend struct {
	url   string
	rpc   *rpchttp.HTTP
	chain string
	root  TrustRoot
	path  string // trust file, "" for none
	now   func() time.Time
	log   *slog.Logger

	mu      sync.Mutex // serializes the light client, which is not safe for concurrent use
	lc      *light.Client
	savedAt time.Time
	saved   int64
}

// dialRPC connects to url and sets up the light client from the trust
// root that opts name (see Options.TrustFile).
func dialRPC(ctx context.Context, url string, opts *Options) (*rpcBackend, error) {
	rpc, err := rpchttp.New(url)
	if err != nil {
		return nil, fmt.Errorf("ledger client %s: %w", url, err)
	}
	b := &rpcBackend{url: url, rpc: rpc, path: opts.TrustFile, now: opts.Now, log: opts.Logger}
	if b.root, err = b.trustRoot(ctx, opts); err != nil {
		return nil, err
	}
	b.chain = b.root.Chain
	primary := lhttp.NewWithClient(b.chain, rpc)
	var witnesses []lprovider.Provider
	for _, w := range opts.Witnesses {
		wu, err := normalizeURL(w)
		if err != nil {
			return nil, fmt.Errorf("witness: %w", err)
		}
		p, err := lhttp.New(b.chain, wu)
		if err != nil {
			return nil, fmt.Errorf("witness %s: %w", wu, err)
		}
		witnesses = append(witnesses, p)
	}
	if len(witnesses) == 0 {
		// The light client cross-checks headers with at least one
		// witness; with none named, the primary is its own (no
		// cross-check: the header's signatures are still verified).
		witnesses = append(witnesses, lhttp.NewWithClient(b.chain, rpc))
	}
	b.lc, err = light.NewClient(ctx, b.chain,
		light.TrustOptions{Period: b.root.Period, Height: b.root.Height, Hash: b.root.Hash},
		primary, witnesses, lstore.New(dbm.NewMemDB(), "light"),
		light.Logger(cmtlog.NewNopLogger()), light.MaxRetryAttempts(3))
	if err != nil {
		return nil, b.explain(err)
	}
	if b.path != "" {
		if err := WriteTrustFile(b.path, b.root); err != nil {
			return nil, fmt.Errorf("write trust file: %w", err)
		}
		b.saved, b.savedAt = b.root.Height, b.now()
	}
	return b, nil
}

// trustRoot picks the root: explicit trust options, else the trust file,
// else the root given (a farm approval's), else, when allowed, the
// validator's newest header on first use.
func (b *rpcBackend) trustRoot(ctx context.Context, opts *Options) (TrustRoot, error) {
	if opts.TrustOptions != "" {
		h, hash, err := ParseTrustOptions(opts.TrustOptions)
		if err != nil {
			return TrustRoot{}, err
		}
		return b.headerRoot(ctx, &h, hash)
	}
	if b.path != "" {
		r, err := ReadTrustFile(b.path)
		if err == nil || !errors.Is(err, os.ErrNotExist) {
			return r, err
		}
	}
	if opts.TrustRoot != nil {
		r := *opts.TrustRoot
		if r.Period == 0 {
			r.Period = DefaultTrustPeriod
		}
		return r, r.Validate()
	}
	if opts.TrustOnFirstUse {
		r, err := b.headerRoot(ctx, nil, nil)
		if err == nil && opts.OnFirstUse != nil {
			opts.OnFirstUse(r)
		}
		return r, err
	}
	where := "pass one"
	if b.path != "" {
		where = fmt.Sprintf("%s does not exist yet; pass one", b.path)
	}
	return TrustRoot{}, fmt.Errorf("%w at %s: %s (a trust file from `zgrid up` or `zgridd chain`, or --trust-options HEIGHT:HASH from `zgrid chain status` on a machine you trust)", ErrNoTrust, b.url, where)
}

// headerRoot reads the header at height (nil: the newest) and makes it
// the root; a hash, when given, must match. The chain id comes from the
// header, which the hash pins.
func (b *rpcBackend) headerRoot(ctx context.Context, height *int64, hash HexBytes) (TrustRoot, error) {
	res, err := b.rpc.Commit(ctx, height)
	if err != nil {
		return TrustRoot{}, fmt.Errorf("cannot reach the ledger at %s (is `zgridd chain` running there?): %w", b.url, err)
	}
	h := res.SignedHeader.Header
	if h == nil {
		return TrustRoot{}, fmt.Errorf("%w: %s returned no header", ErrUntrusted, b.url)
	}
	got := h.Hash()
	if hash != nil && !strings.EqualFold(got.String(), hash.String()) {
		return TrustRoot{}, fmt.Errorf("%w: the header at height %d from %s has hash %s, not the trusted %s", ErrUntrusted, h.Height, b.url, got, hash)
	}
	return TrustRoot{Chain: h.ChainID, Height: h.Height, Hash: HexBytes(got), Period: DefaultTrustPeriod}, nil
}

// explain turns light client errors into what to do.
func (b *rpcBackend) explain(err error) error {
	var expired light.ErrOldHeaderExpired
	if errors.As(err, &expired) {
		return fmt.Errorf("%w: the trusted header (height %d) is older than the trust period %s, so newer headers cannot be checked from it: get a recent HEIGHT:HASH from a source you trust (`zgrid chain status` there) and pass --trust-options HEIGHT:HASH", ErrUntrusted, b.root.Height, b.root.Period)
	}
	if errors.Is(err, lprovider.ErrHeightTooHigh) || errors.Is(err, lprovider.ErrLightBlockNotFound) {
		return fmt.Errorf("ledger %s does not have the block this client trusts (height %d) or a newer one yet: it is behind, or serves another chain: %w", b.url, b.root.Height, err)
	}
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) || errors.Is(err, lprovider.ErrNoResponse) {
		return fmt.Errorf("ledger %s: %w", b.url, err)
	}
	var vf light.ErrVerificationFailed
	var inv light.ErrInvalidHeader
	if strings.Contains(err.Error(), "expected header's hash") {
		hint := ""
		if b.path != "" {
			hint = fmt.Sprintf("; if that ledger was started anew on purpose, %s (and what was built on the old chain) must go", b.path)
		}
		return fmt.Errorf("%w: %s does not serve the trusted chain: its block %d is not the trusted one (%s)%s", ErrUntrusted, b.url, b.root.Height, b.root.Hash, hint)
	}
	if errors.As(err, &vf) || errors.As(err, &inv) || errors.Is(err, light.ErrLightClientAttack) {
		return fmt.Errorf("%w: %s: %v", ErrUntrusted, b.url, err)
	}
	return fmt.Errorf("ledger %s: %w", b.url, err)
}

func (b *rpcBackend) Chain() string { return b.chain }

func (b *rpcBackend) Latest(ctx context.Context) (Header, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	lb, err := b.lc.Update(ctx, b.now())
	if err != nil {
		return Header{}, b.explain(err)
	}
	if lb == nil {
		if lb, err = b.lc.TrustedLightBlock(0); err != nil {
			return Header{}, b.explain(err)
		}
	}
	if b.path != "" && lb.Height > b.saved && b.now().Sub(b.savedAt) >= trustSaveEvery {
		b.save(lb.Height, lb.Hash())
	}
	return Header{Height: lb.Height, AppHash: lb.AppHash, Hash: lb.Hash(), Time: lb.Time}, nil
}

// save moves the trust file to a newer verified header; a failure is
// logged (the old root stays valid until its trust period ends).
func (b *rpcBackend) save(h int64, hash []byte) {
	r := b.root
	r.Height, r.Hash = h, HexBytes(hash)
	if err := WriteTrustFile(b.path, r); err != nil {
		b.log.Warn("save trusted ledger state", "file", b.path, "err", err)
		return
	}
	b.saved, b.savedAt = h, b.now()
}

func (b *rpcBackend) Query(ctx context.Context, path string, data []byte, height int64) (*abci.QueryResponse, error) {
	res, err := b.rpc.ABCIQueryWithOptions(ctx, path, data, rpcclient.ABCIQueryOptions{Height: height, Prove: true})
	if err != nil {
		return nil, err
	}
	return &res.Response, nil
}

func (b *rpcBackend) Broadcast(ctx context.Context, raw []byte) error {
	for {
		br, err := b.rpc.BroadcastTxSync(ctx, raw)
		if rej := asRejection(err); rej != nil {
			return rej
		}
		if err == nil {
			if br.Code != 0 {
				return &ledger.Rejection{Code: ledger.Code(br.Code), Reason: br.Log}
			}
			return nil
		}
		if !strings.Contains(err.Error(), "catching up") {
			return fmt.Errorf("send transaction: %w", err)
		}
		// The validator refuses transactions until it has synced.
		select {
		case <-ctx.Done():
			return fmt.Errorf("the validator is still catching up with its peers: %w", ctx.Err())
		case <-time.After(250 * time.Millisecond):
		}
	}
}

func (b *rpcBackend) LatestHeight(ctx context.Context) (int64, error) {
	st, err := b.rpc.Status(ctx)
	if err != nil {
		return 0, err
	}
	return st.SyncInfo.LatestBlockHeight, nil
}

func (b *rpcBackend) Block(ctx context.Context, h int64) (*Block, error) {
	blk, err := b.rpc.Block(ctx, &h)
	if err != nil {
		return nil, fmt.Errorf("block %d: %w", h, err)
	}
	res, err := b.rpc.BlockResults(ctx, &h)
	if err != nil {
		return nil, fmt.Errorf("block results %d: %w", h, err)
	}
	txs := make([][]byte, len(blk.Block.Data.Txs))
	for i, tx := range blk.Block.Data.Txs {
		txs[i] = tx
	}
	return newBlock(h, txs, res.TxResults, res.FinalizeBlockEvents)
}

func (b *rpcBackend) Reports(ctx context.Context, contract uint64) ([][]byte, error) {
	var out [][]byte
	q := fmt.Sprintf("contract.id = '%d' AND contract.action = 'report'", contract)
	perPage := 100
	for page := 1; ; page++ {
		res, err := b.rpc.TxSearch(ctx, q, false, &page, &perPage, "asc")
		if err != nil {
			return nil, fmt.Errorf("search reports of contract %d: %w", contract, err)
		}
		out = append(out, successful(res.Txs)...)
		if page*perPage >= res.TotalCount {
			return out, nil
		}
	}
}

func successful(txs []*ctypes.ResultTx) [][]byte {
	var out [][]byte
	for _, r := range txs {
		if r.TxResult.Code == 0 {
			out = append(out, r.Tx)
		}
	}
	return out
}

func (b *rpcBackend) Status(ctx context.Context) (*Status, error) {
	h, err := b.Latest(ctx)
	if err != nil {
		return nil, err
	}
	b.mu.Lock()
	lb, err := b.lc.TrustedLightBlock(h.Height)
	b.mu.Unlock()
	if err != nil {
		return nil, b.explain(err)
	}
	s := &Status{Chain: b.chain, Height: h.Height, AppHash: fmt.Sprintf("%X", h.AppHash), Hash: fmt.Sprintf("%X", h.Hash),
		BlockTime: h.Time.UTC().Format(time.RFC3339), Verified: true}
	if st, err := b.rpc.Status(ctx); err == nil {
		s.CatchingUp = st.SyncInfo.CatchingUp
	}
	for _, v := range lb.ValidatorSet.Validators {
		s.Validators = append(s.Validators, Validator{Address: v.Address.String(), PubKey: fmt.Sprintf("%X", v.PubKey.Bytes()), Power: v.VotingPower})
	}
	return s, nil
}

func (b *rpcBackend) Close() error {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.path == "" {
		return nil
	}
	lb, err := b.lc.TrustedLightBlock(0)
	if err == nil && lb.Height > b.saved {
		b.save(lb.Height, lb.Hash())
	}
	return nil
}
