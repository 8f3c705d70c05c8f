// Package client is the typed Go client of the zerogrid ledger. It talks to
// a validator's CometBFT RPC (HTTP on loopback or over the overlay): it
// queries state, submits signed transactions and waits for their commit, and
// follows committed blocks to deliver ledger events.
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
	"net/url"
	"strings"
	"sync"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/wire"
)

// Errors.
var (
	ErrNotFound = errors.New("not found")
	ErrTimeout  = errors.New("timed out waiting for the transaction to commit")
	ErrClosed   = errors.New("client closed")
)

// Options tune a Client.
type Options struct {
	// PollInterval is how often the commit tracker asks for new blocks.
	PollInterval time.Duration
	// CommitTimeout bounds waiting for one transaction's commit.
	CommitTimeout time.Duration
	// TxTTL is the expiry given to transactions (from now).
	TxTTL time.Duration
	// Now is the clock; default time.Now.
	Now func() time.Time
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
}

// Client is safe for concurrent use.
type Client struct {
	rpc   *rpchttp.HTTP
	url   string
	opts  Options
	chain string

	mu      sync.Mutex
	tracker *tracker
	closed  bool
}

// Dial connects to a validator RPC at rawURL (http://host:port, or
// host:port) and reads the chain id.
func Dial(ctx context.Context, rawURL string, opts Options) (*Client, error) {
	opts.defaults()
	u, err := normalizeURL(rawURL)
	if err != nil {
		return nil, err
	}
	rpc, err := rpchttp.New(u)
	if err != nil {
		return nil, fmt.Errorf("ledger client %s: %w", u, err)
	}
	c := &Client{rpc: rpc, url: u, opts: opts}
	info, err := c.ChainInfo(ctx)
	if err != nil {
		return nil, fmt.Errorf("cannot reach the ledger at %s (is `zgridd chain` running there?): %w", u, err)
	}
	c.chain = info.Chain
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

// URL is the RPC address the client talks to.
func (c *Client) URL() string { return c.url }

// Chain is the chain id.
func (c *Client) Chain() string { return c.chain }

// RPC exposes the CometBFT RPC client for what this package does not wrap.
func (c *Client) RPC() *rpchttp.HTTP { return c.rpc }

// Close stops the commit tracker. Waiting calls return ErrClosed.
func (c *Client) Close() {
	c.mu.Lock()
	t := c.tracker
	c.tracker, c.closed = nil, true
	c.mu.Unlock()
	if t != nil {
		t.stop()
	}
}

// query runs an ABCI query and decodes the value into v.
func (c *Client) query(ctx context.Context, path string, data []byte, v any) error {
	res, err := c.rpc.ABCIQuery(ctx, path, data)
	if err != nil {
		return fmt.Errorf("query %s: %w", path, err)
	}
	r := res.Response
	if r.Code != 0 {
		if ledger.Code(r.Code) == ledger.CodeNotFound {
			return fmt.Errorf("%w: %s", ErrNotFound, r.Log)
		}
		return &ledger.Rejection{Code: ledger.Code(r.Code), Reason: r.Log}
	}
	if err := wire.Unmarshal(r.Value, v); err != nil {
		return fmt.Errorf("query %s: bad answer: %w", path, err)
	}
	return nil
}
