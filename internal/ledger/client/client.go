// Package client is the typed Go client of the zerogrid ledger. It reads
// state, submits signed transactions and waits for their commit, and
// follows committed blocks to deliver ledger events.
//
// It trusts no validator. Every answer it returns is computed from a
// state proof that hashes to the app hash of a block header its Backend
// vouches for: over RPC, a header CometBFT's light client verified from a
// trust root (a chain id and one header hash the caller trusts; see
// TrustRoot), so one lying validator can refuse to answer but cannot make
// the client believe a record that is not on the chain, or miss one that
// is. Commit notices and events are hints that say when to read again.
//
// A read shows the state after the block before the newest one (whose
// header commits to it), and never older than what the client already
// saw: the first read of a client shows the newest block's state; after
// its own transaction committed at height H, or a watched event at H, the
// next read shows the state after H. When it has to, a read waits for the
// next header. A verified header serves reads until the validator says a
// newer block exists, so most reads cost one query and one height check.
//
// Commit tracking polls block results height by height instead of relying
// on websocket pushes, which CometBFT drops for slow readers: no committed
// transaction or event is ever missed, and a watcher can resume from any
// height it last saw.
package client

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/wire"
)

// Errors.
var (
	ErrNotFound = errors.New("not found")
	ErrTimeout  = errors.New("timed out waiting for the transaction to commit")
	ErrClosed   = errors.New("client closed")
	// ErrStale is returned when the newest verified header is older than
	// Options.MaxAge: the chain stopped, or the validator is cut off from
	// it (or serves an old view).
	ErrStale = errors.New("the ledger's newest verified block is too old")
)

// Options tune a Client.
type Options struct {
	// PollInterval is how often the commit tracker asks for new blocks.
	PollInterval time.Duration
	// CommitTimeout bounds waiting for one transaction's commit, and for
	// the header that proves a read after it.
	CommitTimeout time.Duration
	// TxTTL is the expiry given to transactions (from now).
	TxTTL time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
	// MaxAge refuses reads when the newest verified header is older than
	// this (default 5 min).
	MaxAge time.Duration
	Logger *slog.Logger

	// Trust (RPC only; see docs/formats/trust.md). The root is, in order:
	// TrustOptions ("HEIGHT:HASH"), the TrustFile if it exists, TrustRoot,
	// or, with TrustOnFirstUse, the validator's newest header (reported to
	// OnFirstUse). Dial fails with ErrNoTrust when none applies. The
	// TrustFile, when set, is written with the root and moved forward as
	// newer headers verify.
	TrustFile       string
	TrustOptions    string
	TrustRoot       *TrustRoot
	TrustOnFirstUse bool
	OnFirstUse      func(TrustRoot)
	// Witnesses are other validators' RPC URLs the light client compares
	// headers with (none: the primary is its own witness).
	Witnesses []string
}

func (o *Options) defaults() {
	if o.PollInterval <= 0 {
		o.PollInterval = 25 * time.Millisecond
	}
	if o.CommitTimeout <= 0 {
		o.CommitTimeout = 60 * time.Second
	}
	if o.TxTTL <= 0 {
		o.TxTTL = 10 * time.Minute
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	if o.MaxAge <= 0 {
		o.MaxAge = 5 * time.Minute
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
}

// Client is safe for concurrent use.
type Client struct {
	b     Backend
	owned bool // Dial made b, so Close closes it
	url   string
	opts  Options
	chain string

	hmu sync.Mutex // one header refresh at a time

	mu      sync.Mutex
	top     Header // newest verified header
	seen    int64  // reads must show the state after this height
	tracker *tracker
	closed  bool

	untrusted   error // the newest failure to verify an answer
	untrustedAt time.Time
}

// Dial connects to a validator's RPC at rawURL (http://host:port, or
// host:port), sets up header verification from the trust root opts name,
// and checks that the chain's state names the trusted chain.
func Dial(ctx context.Context, rawURL string, opts Options) (*Client, error) {
	opts.defaults()
	u, err := normalizeURL(rawURL)
	if err != nil {
		return nil, err
	}
	b, err := dialRPC(ctx, u, &opts)
	if err != nil {
		return nil, err
	}
	c, err := New(ctx, b, opts)
	if err != nil {
		b.Close()
		return nil, err
	}
	c.url, c.owned = u, true
	return c, nil
}

// New returns a client over b and checks, with a proof, that the state
// names b's chain. The caller keeps b: Close does not close it.
func New(ctx context.Context, b Backend, opts Options) (*Client, error) {
	opts.defaults()
	c := &Client{b: b, opts: opts, chain: b.Chain()}
	info, err := c.ChainInfo(ctx)
	if err != nil {
		return nil, err
	}
	if info.Chain != c.chain {
		return nil, fmt.Errorf("%w: the state names chain %q, the trusted chain is %q", ErrUntrusted, info.Chain, c.chain)
	}
	return c, nil
}

func normalizeURL(raw string) (string, error) {
	if raw == "" {
		return "", errors.New("no ledger URL: pass --ledger http://127.0.0.1:26657 (or --grid FILE)")
	}
	if !strings.Contains(raw, "://") {
		raw = "http://" + raw
	}
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https" && u.Scheme != "tcp") {
		return "", fmt.Errorf("ledger URL %q: want http://HOST:PORT", raw)
	}
	if u.Scheme == "tcp" {
		u.Scheme = "http"
	}
	return u.String(), nil
}

// URL is the RPC address the client talks to ("" in process).
func (c *Client) URL() string { return c.url }

// Chain is the chain id, from the trust root.
func (c *Client) Chain() string { return c.chain }

// Close stops the commit tracker and, for a client Dial made, releases its
// backend (saving the newest trusted header). Waiting calls return
// ErrClosed.
func (c *Client) Close() {
	c.mu.Lock()
	t := c.tracker
	closed := c.closed
	c.tracker, c.closed = nil, true
	c.mu.Unlock()
	if t != nil {
		t.stop()
	}
	if !closed && c.owned {
		_ = c.b.Close()
	}
}

// saw records that reads from now on must show the state after height h.
func (c *Client) saw(h int64) {
	c.mu.Lock()
	c.seen = max(c.seen, h)
	c.mu.Unlock()
}

// header returns a verified header whose state (height-1) is at least
// what the client saw: the newest one it has while the validator reports
// no newer block, else a newer one.
func (c *Client) header(ctx context.Context) (Header, error) {
	c.mu.Lock()
	top, need := c.top, max(c.seen, 1)
	c.mu.Unlock()
	if top.Height-1 >= need {
		// The validator's latest height is a hint: a lower one only keeps
		// this (verified) header; a higher one gets verified below.
		if latest, err := c.b.LatestHeight(ctx); err == nil && latest <= top.Height {
			return top, c.fresh(top, c.opts.Now())
		}
	}
	c.hmu.Lock()
	defer c.hmu.Unlock()
	wctx, cancel := context.WithTimeout(ctx, c.opts.CommitTimeout)
	defer cancel()
	c.mu.Lock()
	first := c.top.Height == 0
	c.mu.Unlock()
	for {
		h, err := c.b.Latest(wctx)
		if err != nil {
			if ctx.Err() == nil && wctx.Err() != nil {
				return Header{}, fmt.Errorf("no verified header after height %d within %s: %w", need, c.opts.CommitTimeout, err)
			}
			return Header{}, err
		}
		c.mu.Lock()
		if h.Height >= c.top.Height {
			c.top = h
		}
		h = c.top // never a header older than one already verified
		c.mu.Unlock()
		if first && h.Height > 0 {
			// A new client knows nothing of what other processes wrote
			// (a deploy just before a status): its first read shows the
			// state of the newest block there is, certified by the next.
			need, first = max(need, h.Height), false
		}
		if h.Height-1 >= need {
			return h, c.fresh(h, c.opts.Now())
		}
		select {
		case <-wctx.Done():
			if ctx.Err() != nil {
				return Header{}, ctx.Err()
			}
			return Header{}, fmt.Errorf("the ledger produced no block after height %d within %s: it may be stalled; check `zgrid chain status`", h.Height, c.opts.CommitTimeout)
		case <-time.After(c.opts.PollInterval):
		}
	}
}

func (c *Client) fresh(h Header, now time.Time) error {
	if age := now.Sub(h.Time); age > c.opts.MaxAge {
		return fmt.Errorf("%w: block %d is from %s (%s ago): the chain has stopped, or the validator is cut off from it; try another validator (--ledger) or check the clocks", ErrStale, h.Height, h.Time.UTC().Format(time.RFC3339), age.Round(time.Second))
	}
	return nil
}

// query runs an ABCI query with a proof against a verified header and
// decodes into v the answer it computes from the proof. A refusal the
// proof shows (such as not found) is returned as such; an answer that does
// not verify wraps ErrUntrusted.
func (c *Client) query(ctx context.Context, path string, data []byte, v any) error {
	err := c.verifiedQuery(ctx, path, data, v)
	if errors.Is(err, ErrUntrusted) {
		c.mu.Lock()
		c.untrusted, c.untrustedAt = err, c.opts.Now()
		c.mu.Unlock()
		c.opts.Logger.Warn("refused an answer from the ledger", "url", c.url, "err", err)
	}
	return err
}

// LastUntrusted returns when this client last refused what the ledger
// served because it did not verify, and why (zero and nil: never). A
// node reports it in its conditions, so that its owner sees it.
func (c *Client) LastUntrusted() (time.Time, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.untrustedAt, c.untrusted
}

func (c *Client) verifiedQuery(ctx context.Context, path string, data []byte, v any) error {
	h, err := c.header(ctx)
	if err != nil {
		return fmt.Errorf("query %s: %w", path, err)
	}
	want := h.Height - 1
	res, err := c.b.Query(ctx, path, data, want)
	if err != nil {
		return fmt.Errorf("query %s: %w", path, err)
	}
	if res.Height != want {
		return fmt.Errorf("%w: query %s: asked for the state at height %d, the answer is for %d", ErrUntrusted, path, want, res.Height)
	}
	if res.ProofOps == nil || len(res.ProofOps.Ops) != 1 || res.ProofOps.Ops[0].Type != ledger.ProofOpType {
		reason := "it has no state proof"
		if res.Code != 0 {
			reason = fmt.Sprintf("it has no state proof (the validator says: %s)", res.Log)
		}
		return fmt.Errorf("%w: query %s at height %d: %s", ErrUntrusted, path, want, reason)
	}
	val, err := ledger.VerifyAnswer(h.AppHash, want, path, data, res.ProofOps.Ops[0].Data)
	var rej *ledger.Rejection
	switch {
	case errors.As(err, &rej) && rej.Code == ledger.CodeNotFound:
		return fmt.Errorf("%w: %s", ErrNotFound, rej.Reason)
	case rej != nil:
		return rej
	case err != nil:
		return fmt.Errorf("%w: query %s at height %d: %v", ErrUntrusted, path, want, err)
	}
	if err := wire.Unmarshal(val, v); err != nil {
		return fmt.Errorf("query %s: %w", path, err)
	}
	return nil
}

// TrustRoot is the newest header this client verified, as a root another
// client (a node the farm owner approves, another machine) can start
// verifying the same chain from.
func (c *Client) TrustRoot(ctx context.Context) (TrustRoot, error) {
	h, err := c.header(ctx)
	if err != nil {
		return TrustRoot{}, err
	}
	return TrustRoot{Chain: c.chain, Height: h.Height, Hash: HexBytes(h.Hash), Period: DefaultTrustPeriod}, nil
}
