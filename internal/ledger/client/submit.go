package client

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"sync"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/wire"
)

// Result is a committed transaction's outcome.
type Result struct {
	Hash   [32]byte
	Height int64
	Code   ledger.Code
	Log    string
	ID     uint64 // id created or changed, when the op has one
	Name   string
	Events []Event
}

// Err returns the rejection of a failed result, or nil.
func (r *Result) Err() error {
	if r.Code == ledger.CodeOK {
		return nil
	}
	return &ledger.Rejection{Code: r.Code, Reason: r.Log}
}

// Signer submits transactions for one key, tracking its sequence number so
// that several transactions can be in flight at once.
type Signer struct {
	c   *Client
	key identity.PrivateKey

	sendMu sync.Mutex // orders Send calls
	mu     sync.Mutex // guards seq and synced
	seq    uint64
	synced bool
}

// Signer returns a Signer for key.
func (c *Client) Signer(key identity.PrivateKey) *Signer { return &Signer{c: c, key: key} }

// Key is the signer's public key.
func (s *Signer) Key() identity.PublicKey { return s.key.Public() }

// nextSeq reserves the next sequence number, reading it from the chain the
// first time (an unknown key starts at 0: it is registering).
func (s *Signer) nextSeq(ctx context.Context) (uint64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !s.synced {
		a, err := s.c.Account(ctx, s.key.Public())
		switch {
		case errors.Is(err, ErrNotFound):
			s.seq = 0
		case err != nil:
			return 0, err
		default:
			s.seq = a.Seq
		}
		s.synced = true
	}
	seq := s.seq
	s.seq++
	return seq, nil
}

// resync forgets the local sequence; the next call reads it again.
func (s *Signer) resync() {
	s.mu.Lock()
	s.synced = false
	s.mu.Unlock()
}

// Sign builds and signs a transaction for op without sending it.
func (s *Signer) Sign(ctx context.Context, op ledger.Op) ([]byte, error) {
	seq, err := s.nextSeq(ctx)
	if err != nil {
		return nil, err
	}
	body := ledger.Body{Chain: s.c.chain, Seq: seq, Expires: s.c.opts.Now().Add(s.c.opts.TxTTL).Unix(), Op: op}
	_, raw, err := ledger.SignTx(s.key, body)
	if err != nil {
		s.resync()
	}
	return raw, err
}

// Submit signs op, sends it and waits until it is committed. A transaction
// the chain refuses returns a *ledger.Rejection with its reason. Submit may
// be called from many goroutines at once: sends are ordered by sequence
// number and the waits overlap.
func (s *Signer) Submit(ctx context.Context, op ledger.Op) (*Result, error) {
	for attempt := 0; ; attempt++ {
		p, err := s.Send(ctx, op)
		if ledger.CodeOf(err) == ledger.CodeBadSequence && attempt < 2 {
			continue // Send resynced: another process used this key
		}
		if err != nil {
			return p.result(), err
		}
		return p.Wait(ctx)
	}
}

// Send signs op with the next sequence number and hands it to the ledger,
// returning once the validator admitted it to its mempool. Sends from one
// Signer are serialized so that the validator sees sequence numbers in
// order; wait for the commit with Pending.Wait.
func (s *Signer) Send(ctx context.Context, op ledger.Op) (*Pending, error) {
	s.sendMu.Lock()
	defer s.sendMu.Unlock()
	raw, err := s.Sign(ctx, op)
	if err != nil {
		return nil, err
	}
	p, err := s.c.Broadcast(ctx, raw)
	if err != nil {
		s.resync() // the sequence was not used
	}
	return p, err
}

// Pending is a transaction admitted to the mempool and not yet committed.
type Pending struct {
	c    *Client
	t    *tracker
	hash [32]byte
	done <-chan *Result
	rej  *Result
}

func (p *Pending) result() *Result {
	if p == nil {
		return nil
	}
	return p.rej
}

// Hash is the transaction's hash (SHA-256 of its bytes).
func (p *Pending) Hash() [32]byte { return p.hash }

// Wait blocks until the transaction is committed (its result may still be a
// refusal: see Result.Err, which Wait returns as the error).
func (p *Pending) Wait(ctx context.Context) (*Result, error) {
	defer p.t.forget(p.hash)
	wctx, cancel := context.WithTimeout(ctx, p.c.opts.CommitTimeout)
	defer cancel()
	select {
	case r, ok := <-p.done:
		if !ok {
			return nil, ErrClosed
		}
		p.c.saw(r.Height)
		return r, r.Err()
	case <-wctx.Done():
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w (%s): the ledger may be stalled; check `zgrid chain status`", ErrTimeout, p.c.opts.CommitTimeout)
	}
}

// Broadcast hands signed transaction bytes to the ledger. A refusal at
// admission (CheckTx) is returned as a *ledger.Rejection.
func (c *Client) Broadcast(ctx context.Context, raw []byte) (*Pending, error) {
	t, err := c.track()
	if err != nil {
		return nil, err
	}
	hash := sha256.Sum256(raw)
	p := &Pending{c: c, t: t, hash: hash, done: t.wait(hash)}
	err = c.b.Broadcast(ctx, raw)
	var rej *ledger.Rejection
	if errors.As(err, &rej) {
		t.forget(hash)
		p.rej = &Result{Hash: hash, Code: rej.Code, Log: rej.Reason}
		return p, rej
	}
	if err != nil {
		t.forget(hash)
		return nil, err
	}
	return p, nil
}

// SubmitRaw broadcasts signed transaction bytes and waits for their commit.
func (c *Client) SubmitRaw(ctx context.Context, raw []byte) (*Result, error) {
	p, err := c.Broadcast(ctx, raw)
	if err != nil {
		return p.result(), err
	}
	return p.Wait(ctx)
}

func decodeResult(r *Result, data []byte) {
	var tr ledger.TxResult
	if len(data) > 0 && wire.Unmarshal(data, &tr) == nil {
		r.ID, r.Name = tr.ID, tr.Name
	}
}
