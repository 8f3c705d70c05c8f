package grid

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	dbm "github.com/cometbft/cometbft-db"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/chain"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
)

// validator is the in-process ledger.
type validator struct {
	db   dbm.DB
	node *chain.Node
}

func startValidator(ctx context.Context, home, rpc string, interval time.Duration, log *slog.Logger) (*validator, error) {
	appState, err := ledger.MarshalGenesis(ledger.GenesisState{Params: ledger.DefaultParams()})
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(filepath.Join(home, "data"), 0o700); err != nil {
		return nil, err
	}
	db, err := dbm.NewGoLevelDB("zerogrid-app", filepath.Join(home, "data"))
	if err != nil {
		return nil, fmt.Errorf("open ledger state in %s: %w (is another zgrid up using this directory?)", home, err)
	}
	app, err := ledger.NewApp(db, ledger.Options{Logger: log.With("module", "ledger")})
	if err != nil {
		db.Close()
		return nil, err
	}
	n, err := chain.Start(ctx, chain.Config{Home: home, RPCAddr: rpc, P2PAddr: "127.0.0.1:0",
		BlockInterval: interval, AppState: appState}, app)
	if err != nil {
		db.Close()
		return nil, fmt.Errorf("start ledger: %w", err)
	}
	return &validator{db: db, node: n}, nil
}

// writeTrustRoot writes root to path (the trust file that clients of the
// grid keep current) unless it exists for this chain already, and also to
// path's sibling trust-root.json, which stays at the first block: nodes
// and the gateway copy it into their own data directories on first start.
func writeTrustRoot(path string, root client.TrustRoot) (string, error) {
	if old, err := client.ReadTrustFile(path); err != nil || old.Chain != root.Chain {
		if err := client.WriteTrustFile(path, root); err != nil {
			return "", err
		}
	}
	first := filepath.Join(filepath.Dir(path), "trust-root.json")
	return first, client.WriteTrustFile(first, root)
}

func (v *validator) stop() error {
	err := v.node.Stop()
	return errors.Join(err, v.db.Close())
}

// ensureTwin registers key's twin unless it has one.
func ensureTwin(ctx context.Context, c *client.Client, key identity.PrivateKey) (uint64, error) {
	if tw, err := c.TwinByKey(ctx, key.Public()); err == nil {
		return tw.ID, nil
	}
	res, err := c.Signer(key).Submit(ctx, ledger.Op{TwinRegister: &ledger.TwinRegister{}})
	if err != nil {
		return 0, fmt.Errorf("register twin: %w", err)
	}
	return res.ID, nil
}

// ensureFarm returns the farm recorded in an earlier grid.json if the
// farmer still owns it, or creates one.
func ensureFarm(ctx context.Context, c *client.Client, farmer identity.PrivateKey, twin, previous uint64) (uint64, error) {
	if previous != 0 {
		if f, err := c.Farm(ctx, previous); err == nil && f.Owner == twin {
			return previous, nil
		}
	}
	res, err := c.Signer(farmer).Submit(ctx, ledger.Op{FarmCreate: &ledger.FarmCreate{Name: fmt.Sprintf("local-%d", twin)}})
	if err != nil {
		return 0, fmt.Errorf("create farm: %w", err)
	}
	return res.ID, nil
}

// ensureName claims name for the twin of key unless that twin holds it.
func ensureName(ctx context.Context, c *client.Client, key identity.PrivateKey, twin uint64, name string) error {
	if n, err := c.Name(ctx, name); err == nil {
		if n.Owner == twin {
			return nil
		}
		return fmt.Errorf("name %q is held by twin %d", name, n.Owner)
	}
	if _, err := c.Signer(key).Submit(ctx, ledger.Op{NameClaim: &ledger.NameClaim{Name: name}}); err != nil {
		return fmt.Errorf("claim name %q: %w", name, err)
	}
	return nil
}
