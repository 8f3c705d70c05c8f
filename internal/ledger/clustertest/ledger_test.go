package clustertest

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
)

// Bounds on waiting for the chain. Polling stops as soon as the condition
// holds; the bound only decides when to give up.
const (
	waitTimeout   = 60 * time.Second
	callTimeout   = 5 * time.Second
	pollInterval  = 100 * time.Millisecond
	commitTimeout = 30 * time.Second
)

// poll calls check until it returns nil and fails the test if that does not
// happen within waitTimeout, reporting check's last error.
func poll(t *testing.T, what string, check func(ctx context.Context) error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	tick := time.NewTicker(pollInterval)
	defer tick.Stop()
	for {
		cctx, ccancel := context.WithTimeout(ctx, callTimeout)
		err := check(cctx)
		ccancel()
		if err == nil {
			return
		}
		select {
		case <-ctx.Done():
			t.Fatalf("%s: not within %v: %v", what, waitTimeout, err)
		case <-tick.C:
		}
	}
}

// dial connects a client to url, retrying until the RPC answers; it
// verifies what it reads from root.
func dial(t *testing.T, name, url string, root client.TrustRoot) *client.Client {
	t.Helper()
	var c *client.Client
	poll(t, "dial "+name+" at "+url, func(ctx context.Context) error {
		var err error
		c, err = client.Dial(ctx, url, client.Options{CommitTimeout: commitTimeout, TrustRoot: &root})
		return err
	})
	t.Cleanup(c.Close)
	return c
}

// rpcOf is a raw RPC client of c's validator, for what the tests inspect
// below the ledger client (commits, validator sets).
func rpcOf(c *client.Client) *rpchttp.HTTP {
	r, err := rpchttp.New(c.URL())
	if err != nil {
		panic(err) // c.URL() was already dialled
	}
	return r
}

// height is the latest block height one validator reports.
func height(ctx context.Context, c *client.Client) (int64, error) {
	st, err := rpcOf(c).Status(ctx)
	if err != nil {
		return 0, err
	}
	return st.SyncInfo.LatestBlockHeight, nil
}

// waitHeight waits until every client reports a height of at least h.
func waitHeight(t *testing.T, cs map[string]*client.Client, h int64) {
	t.Helper()
	for name, c := range cs {
		poll(t, fmt.Sprintf("%s reaches height %d", name, h), func(ctx context.Context) error {
			got, err := height(ctx, c)
			if err == nil && got < h {
				err = fmt.Errorf("at height %d", got)
			}
			return err
		})
	}
}

// maxHeight is the highest height any of the clients reports now.
func maxHeight(t *testing.T, cs map[string]*client.Client) int64 {
	t.Helper()
	var top int64
	for name, c := range cs {
		ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
		h, err := height(ctx, c)
		cancel()
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		top = max(top, h)
	}
	return top
}

// appHashes returns what one validator says the application hash is after
// block h: from its own results for h, and from the header of block h+1,
// which commits to it. The two must agree.
func appHashes(ctx context.Context, c *client.Client, h int64) (fromResults, fromHeader []byte, err error) {
	res, err := rpcOf(c).BlockResults(ctx, &h)
	if err != nil {
		return nil, nil, fmt.Errorf("block results %d: %w", h, err)
	}
	next := h + 1
	commit, err := rpcOf(c).Commit(ctx, &next)
	if err != nil {
		return nil, nil, fmt.Errorf("commit %d: %w", next, err)
	}
	return res.AppHash, commit.Header.AppHash, nil
}

// requireSameAppHash checks that every client reports one app hash after
// block h. The clients must already be past h+1.
func requireSameAppHash(t *testing.T, cs map[string]*client.Client, h int64) {
	t.Helper()
	var want []byte
	var wantFrom string
	for name, c := range cs {
		ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
		results, header, err := appHashes(ctx, c, h)
		cancel()
		switch {
		case err != nil:
			t.Fatalf("%s: %v", name, err)
		case len(results) == 0:
			t.Fatalf("%s: block results %d carry no app hash", name, h)
		case !bytes.Equal(results, header):
			t.Fatalf("%s: app hash after block %d is %X, but header %d says %X", name, h, results, h+1, header)
		case want == nil:
			want, wantFrom = results, name
		case !bytes.Equal(results, want):
			t.Fatalf("app hash after block %d: %s has %X, %s has %X", h, name, results, wantFrom, want)
		}
	}
	t.Logf("all %d validators agree: app hash after block %d is %X", len(cs), h, want)
}

func newKey(t *testing.T) identity.PrivateKey {
	t.Helper()
	k, err := identity.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// submit sends op and fails the test unless it commits successfully.
func submit(t *testing.T, s *client.Signer, op ledger.Op) *client.Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), waitTimeout)
	defer cancel()
	res, err := s.Submit(ctx, op)
	if err != nil {
		t.Fatalf("submit %s: %v", op.Kind(), err)
	}
	if res.Height <= 0 {
		t.Fatalf("submit %s: committed at height %d", op.Kind(), res.Height)
	}
	return res
}

// written is what the test wrote to the ledger and expects to read back.
type written struct {
	twins map[uint64]identity.PublicKey // twin id → root key
	names map[string]uint64             // name → owning twin
	top   int64                         // highest height a write committed at
}

func newWritten() *written {
	return &written{twins: map[uint64]identity.PublicKey{}, names: map[string]uint64{}}
}

// registerTwin registers key's twin through s and records it.
func (w *written) registerTwin(t *testing.T, s *client.Signer) uint64 {
	t.Helper()
	res := submit(t, s, ledger.Op{TwinRegister: &ledger.TwinRegister{}})
	if res.ID == 0 {
		t.Fatalf("twin register committed at %d without a twin id", res.Height)
	}
	w.twins[res.ID] = s.Key()
	w.top = max(w.top, res.Height)
	return res.ID
}

// claimName claims name for twin through s and records it.
func (w *written) claimName(t *testing.T, s *client.Signer, twin uint64, name string) int64 {
	t.Helper()
	res := submit(t, s, ledger.Op{NameClaim: &ledger.NameClaim{Name: name}})
	if res.Name != name {
		t.Fatalf("name claim %q committed at %d as %q", name, res.Height, res.Name)
	}
	w.names[name] = twin
	w.top = max(w.top, res.Height)
	return res.Height
}

// check reads every recorded twin and name through c.
func (w *written) check(ctx context.Context, c *client.Client) error {
	for id, key := range w.twins {
		tw, err := c.Twin(ctx, id)
		if err != nil {
			return fmt.Errorf("twin %d: %w", id, err)
		}
		if !tw.Root.Equal(key) {
			return fmt.Errorf("twin %d has root %s, want %s", id, tw.Root, key)
		}
	}
	for name, owner := range w.names {
		nc, err := c.Name(ctx, name)
		if err != nil {
			return fmt.Errorf("name %q: %w", name, err)
		}
		if nc.Owner != owner {
			return fmt.Errorf("name %q is owned by twin %d, want %d", name, nc.Owner, owner)
		}
	}
	return nil
}

// requireVisible waits until every client has applied the block of the
// last write and then requires all writes to read back through it. A
// validator reports a block's height once it has stored the block, before
// its application has executed it, so applied means the next height.
func (w *written) requireVisible(t *testing.T, cs map[string]*client.Client) {
	t.Helper()
	waitHeight(t, cs, w.top+1)
	for name, c := range cs {
		ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
		err := w.check(ctx, c)
		cancel()
		if err != nil {
			st, serr := c.Status(t.Context())
			t.Fatalf("%s at height ≥ %d: %v (the client's newest verified header: %+v %v)", name, w.top, err, st, serr)
		}
	}
}
