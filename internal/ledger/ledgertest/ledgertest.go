// Package ledgertest runs a real one-validator ledger in the test's process,
// for tests of the packages built on the ledger.
package ledgertest

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	dbm "github.com/cometbft/cometbft-db"

	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/chain"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
)

// Start runs a validator (CometBFT and the zerogrid app, goleveldb on disk
// in a temp dir, RPC on a free 127.0.0.1 port, fast blocks) until the test
// ends, and returns a client connected to it. params nil means defaults.
func Start(t testing.TB, params *ledger.Params) *client.Client {
	t.Helper()
	home := t.TempDir()
	db, err := dbm.NewGoLevelDB("app", filepath.Join(home, "appdb"))
	if err != nil {
		t.Fatal(err)
	}
	app, err := ledger.NewApp(db, ledger.Options{})
	if err != nil {
		t.Fatal(err)
	}
	p := ledger.DefaultParams()
	if params != nil {
		p = *params
	}
	appState, err := ledger.MarshalGenesis(ledger.GenesisState{Params: p})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	n, err := chain.Start(ctx, chain.Config{Home: home, RPCAddr: "127.0.0.1:0", P2PAddr: "127.0.0.1:0",
		BlockInterval: 150 * time.Millisecond, AppState: appState}, app)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := n.Stop(); err != nil {
			t.Error(err)
		}
		db.Close()
	})
	root := Trust(t, n)
	c, err := client.Dial(ctx, "http://"+n.RPCAddr(), client.Options{CommitTimeout: 20 * time.Second, TrustRoot: &root})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

// Trust returns the trust root of a validator this test runs: its chain
// id and first block, read from its own store.
func Trust(t testing.TB, n *chain.Node) client.TrustRoot {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	id, hash, err := n.FirstBlock(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return client.TrustRoot{Chain: id, Height: 1, Hash: hash, Period: client.DefaultTrustPeriod}
}

// Memory runs an in-process ledger (client.Memory: the app without
// CometBFT, blocks every 20 ms) until the test ends, and returns a client
// of it. params nil means defaults.
func Memory(t testing.TB, params *ledger.Params) (*client.Memory, *client.Client) {
	t.Helper()
	opts := client.MemoryOptions{}
	if params != nil {
		opts.Params = *params
	}
	m, err := client.NewMemory(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	c, err := m.Client(context.Background(), client.Options{CommitTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return m, c
}

// TrustFile writes the newest header c verified to a trust file in a
// temporary directory, for processes and commands the test starts against
// the same ledger (`--trust-root`, `--trust`, ZGRID_TRUST).
func TrustFile(t testing.TB, c *client.Client) string {
	t.Helper()
	root, err := c.TrustRoot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "trust.json")
	if err := client.WriteTrustFile(path, root); err != nil {
		t.Fatal(err)
	}
	return path
}
