package client

import (
	"context"
	"crypto/sha256"
	"fmt"
	"strconv"
	"sync"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/zerogrid/zerogrid/internal/ledger"
)

// Event is one ledger event: a successful transaction's event or a block
// event (such as a contract expiring).
type Event struct {
	Height int64             `json:"height"`
	Type   string            `json:"type"`
	Attrs  map[string]string `json:"attrs"`
}

// Uint returns a numeric attribute, or 0.
func (e Event) Uint(key string) uint64 {
	v, _ := strconv.ParseUint(e.Attrs[key], 10, 64)
	return v
}

// Block is what one committed block did.
type Block struct {
	Height  int64
	Results map[[32]byte]*Result
	Events  []Event // in order: per transaction, then block events
}

// newBlock pairs a block's transactions with their results.
func newBlock(h int64, txs [][]byte, results []*abci.ExecTxResult, blockEvents []abci.Event) (*Block, error) {
	if len(results) != len(txs) {
		return nil, fmt.Errorf("block %d: %d txs but %d results", h, len(txs), len(results))
	}
	b := &Block{Height: h, Results: make(map[[32]byte]*Result, len(results))}
	for i, tx := range txs {
		er := results[i]
		r := &Result{Hash: sha256.Sum256(tx), Height: h, Code: ledger.Code(er.Code), Log: er.Log}
		if er.Code == 0 {
			decodeResult(r, er.Data)
			r.Events = convertEvents(h, er.Events)
			b.Events = append(b.Events, r.Events...)
		}
		b.Results[r.Hash] = r
	}
	b.Events = append(b.Events, convertEvents(h, blockEvents)...)
	return b, nil
}

func convertEvents(h int64, evs []abci.Event) []Event {
	out := make([]Event, 0, len(evs))
	for _, e := range evs {
		ev := Event{Height: h, Type: e.Type, Attrs: make(map[string]string, len(e.Attributes))}
		for _, a := range e.Attributes {
			ev.Attrs[a.Key] = a.Value
		}
		out = append(out, ev)
	}
	return out
}

// LatestHeight is the last committed height, as the validator says: a
// place to follow blocks from, not a fact to act on.
func (c *Client) LatestHeight(ctx context.Context) (int64, error) {
	return c.b.LatestHeight(ctx)
}

// Follow calls fn for every committed block after height from, in order,
// until ctx ends or fn returns an error. Transient RPC errors are retried.
func (c *Client) Follow(ctx context.Context, from int64, fn func(*Block) error) error {
	next := from + 1
	tick := time.NewTicker(c.opts.PollInterval)
	defer tick.Stop()
	for {
		latest, err := c.LatestHeight(ctx)
		for err == nil && next <= latest {
			var b *Block
			if b, err = c.b.Block(ctx, next); err == nil {
				if err := fn(b); err != nil {
					return err
				}
				next++
			}
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
	}
}

// tracker follows blocks for SubmitRaw and hands each waiting transaction
// its result.
type tracker struct {
	cancel context.CancelFunc
	done   chan struct{}

	mu      sync.Mutex
	waiters map[[32]byte]chan *Result
}

func (c *Client) track() (*tracker, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, ErrClosed
	}
	if c.tracker != nil {
		return c.tracker, nil
	}
	h, err := c.LatestHeight(context.Background())
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	t := &tracker{cancel: cancel, done: make(chan struct{}), waiters: map[[32]byte]chan *Result{}}
	go func() {
		defer close(t.done)
		_ = c.Follow(ctx, h, t.deliver)
		t.closeAll()
	}()
	c.tracker = t
	return t, nil
}

func (t *tracker) wait(h [32]byte) <-chan *Result {
	ch := make(chan *Result, 1)
	t.mu.Lock()
	t.waiters[h] = ch
	t.mu.Unlock()
	return ch
}

func (t *tracker) forget(h [32]byte) {
	t.mu.Lock()
	delete(t.waiters, h)
	t.mu.Unlock()
}

func (t *tracker) deliver(b *Block) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for h, r := range b.Results {
		if ch, ok := t.waiters[h]; ok {
			ch <- r
			delete(t.waiters, h)
		}
	}
	return nil
}

func (t *tracker) closeAll() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for h, ch := range t.waiters {
		close(ch)
		delete(t.waiters, h)
	}
}

func (t *tracker) stop() {
	t.cancel()
	<-t.done
}
