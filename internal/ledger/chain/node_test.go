package chain

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	cmttypes "github.com/cometbft/cometbft/types"
)

const (
	testInterval = 100 * time.Millisecond
	// waitLong bounds waits for the chain to make progress. It is generous
	// because -race on a loaded two-core machine slows consensus a lot;
	// healthy runs finish in a fraction of it.
	waitLong = time.Minute
)

func soloConfig(t *testing.T, home string) Config {
	return Config{
		Home:          home,
		ChainID:       "chain-test",
		RPCAddr:       "127.0.0.1:0",
		P2PAddr:       "127.0.0.1:0",
		BlockInterval: testInterval,
		Logger:        testLogger(t),
	}
}

// TestStartRestart runs one validator, commits a tx, stops, and starts the
// same home twice more: once with the same app (its state continues) and once
// with a fresh app (CometBFT replays every block into it).
func TestStartRestart(t *testing.T) {
	t.Parallel()
	home := t.TempDir()
	cfg := soloConfig(t, home)
	app := newKVApp()

	n := startTestNode(t, cfg, app)
	c := rpcClient(t, n)
	hash := commitTx(t, c, "a=1")
	subscribeAndCommit(t, c, "b=2") // leaves a websocket open across Stop
	defer func() { _ = c.Stop() }()
	checkSameHomeRefused(t, cfg)
	h1 := waitHeight(t, c, 3)
	logBlockInterval(t, c, h1, testInterval)
	if err := n.Stop(); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if err := n.Stop(); err != nil {
		t.Fatalf("second Stop: %v", err)
	}
	if _, err := latestHeight(t.Context(), c); err == nil {
		t.Fatalf("RPC at %s still answers after Stop", n.RPCAddr())
	}
	// CometBFT's per-peer goroutines can outlive Stop and read the block
	// store, which panics on a closed goleveldb; a stopped store reads empty.
	if meta := n.cmt.BlockStore().LoadBlockMeta(1); meta != nil {
		t.Fatalf("block store still returns height 1 after Stop")
	}

	t.Run("same app continues", func(t *testing.T) {
		n := startTestNode(t, cfg, app)
		c := rpcClient(t, n)
		waitHeight(t, c, h1+2)
		checkTxIndexed(t, c, hash)
		checkQuery(t, c, "a", "1")
		checkAppHashMatchesChain(t, c)
	})
	t.Run("fresh app is replayed", func(t *testing.T) {
		fresh := newKVApp()
		n := startTestNode(t, cfg, fresh)
		c := rpcClient(t, n)
		waitHeight(t, c, h1+4)
		checkQuery(t, c, "a", "1")
		checkQuery(t, c, "b", "2")
		checkAppHashMatchesChain(t, c)
	})
}

// commitTx submits tx with broadcast_tx_sync and waits until /tx finds it.
func commitTx(t *testing.T, c *rpchttp.HTTP, tx string) []byte {
	t.Helper()
	res, err := c.BroadcastTxSync(t.Context(), cmttypes.Tx(tx))
	if err != nil {
		t.Fatalf("broadcast %q: %v", tx, err)
	}
	if res.Code != 0 {
		t.Fatalf("broadcast %q: CheckTx code %d: %s", tx, res.Code, res.Log)
	}
	checkTxIndexed(t, c, res.Hash)
	return res.Hash
}

func checkTxIndexed(t *testing.T, c *rpchttp.HTTP, hash []byte) {
	t.Helper()
	waitFor(t, waitLong, "tx to be indexed", func(ctx context.Context) (bool, error) {
		res, err := c.Tx(ctx, hash, false)
		if err != nil {
			return false, err
		}
		if res.TxResult.Code != 0 || res.Height < 1 {
			t.Fatalf("tx %X: code %d at height %d", hash, res.TxResult.Code, res.Height)
		}
		return true, nil
	})
}

// subscribeAndCommit checks the websocket path: a Tx event subscription sees
// a tx submitted after it was made. The caller stops c.
func subscribeAndCommit(t *testing.T, c *rpchttp.HTTP, tx string) {
	t.Helper()
	if err := c.Start(); err != nil {
		t.Fatalf("start websocket: %v", err)
	}
	ctx, cancel := context.WithTimeout(t.Context(), waitLong)
	defer cancel()
	events, err := c.Subscribe(ctx, "test", "tm.event='Tx' AND kv.key='b'")
	if err != nil {
		t.Fatalf("subscribe: %v", err)
	}
	if _, err := c.BroadcastTxSync(ctx, cmttypes.Tx(tx)); err != nil {
		t.Fatalf("broadcast %q: %v", tx, err)
	}
	select {
	case ev := <-events:
		data, ok := ev.Data.(cmttypes.EventDataTx)
		if !ok || string(data.Tx) != tx {
			t.Fatalf("event %T %+v, want EventDataTx for %q", ev.Data, ev.Data, tx)
		}
	case <-ctx.Done():
		t.Fatalf("no Tx event for %q", tx)
	}
}

// checkSameHomeRefused starts a second node on a running home, which must
// fail (goleveldb's lock) without disturbing the first.
func checkSameHomeRefused(t *testing.T, cfg Config) {
	t.Helper()
	n, err := Start(t.Context(), cfg, newKVApp())
	if err == nil {
		_ = n.Stop()
		t.Fatal("second Start on a running home succeeded")
	}
	t.Logf("second Start on a running home: %v", err)
}

func waitHeight(t *testing.T, c *rpchttp.HTTP, h int64) int64 {
	t.Helper()
	var got int64
	waitFor(t, waitLong, "height", func(ctx context.Context) (bool, error) {
		var err error
		got, err = latestHeight(ctx, c)
		return got >= h, err
	})
	return got
}

func checkQuery(t *testing.T, c *rpchttp.HTTP, key, want string) {
	t.Helper()
	res, err := c.ABCIQuery(t.Context(), "/key", []byte(key))
	if err != nil {
		t.Fatalf("query %q: %v", key, err)
	}
	if got := string(res.Response.Value); got != want {
		t.Fatalf("query %q = %q (code %d), want %q", key, got, res.Response.Code, want)
	}
}

// checkAppHashMatchesChain compares the app's Info with the chain: the block
// after the app's last height must carry the app's hash.
func checkAppHashMatchesChain(t *testing.T, c *rpchttp.HTTP) {
	t.Helper()
	info, err := c.ABCIInfo(t.Context())
	if err != nil {
		t.Fatalf("abci_info: %v", err)
	}
	last := info.Response.LastBlockHeight
	waitHeight(t, c, last+1)
	next := last + 1
	blk, err := c.Block(t.Context(), &next)
	if err != nil {
		t.Fatalf("block %d: %v", next, err)
	}
	if !bytes.Equal(blk.Block.AppHash, info.Response.LastBlockAppHash) {
		t.Fatalf("block %d app hash %X, app says %X at height %d",
			next, blk.Block.AppHash, info.Response.LastBlockAppHash, last)
	}
}

// logBlockInterval reports the mean time between the last few blocks. It is
// informational: timing assertions belong in benchmarks.
func logBlockInterval(t *testing.T, c *rpchttp.HTTP, h int64, target time.Duration) {
	t.Helper()
	from := max(h-5, 1)
	first, err1 := c.Block(t.Context(), &from)
	last, err2 := c.Block(t.Context(), &h)
	if err := errors.Join(err1, err2); err != nil {
		t.Fatalf("blocks %d..%d: %v", from, h, err)
	}
	if h > from {
		mean := last.Block.Time.Sub(first.Block.Time) / time.Duration(h-from)
		t.Logf("mean block interval over heights %d..%d: %v (target %v)", from, h, mean, target)
	}
}
