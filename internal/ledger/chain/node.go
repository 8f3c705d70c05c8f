package chain

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	abcitypes "github.com/cometbft/cometbft/abci/types"
	cmtcfg "github.com/cometbft/cometbft/config"
	nm "github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/proxy"
)

// Node is a running in-process CometBFT validator. RPCAddr and Stop are safe
// for concurrent use.
type Node struct {
	cmt    *nm.Node
	rpc    *rpcServer
	dbs    *dbSet
	logger *slog.Logger

	stopOnce sync.Once
	stopErr  error
}

// Start runs Init, then starts a validator on cfg.Home with app behind an
// in-process ABCI client, and returns once the node runs and its RPC
// listener is bound. Non-zero Config fields (Moniker, RPCAddr, P2PAddr,
// BlockInterval) override config.toml for this run only.
//
// ctx bounds start-up, including the ABCI handshake that replays blocks the
// application has not seen; once Start returns, the node runs until Stop.
//
// The application is called through one mutex shared by CometBFT's four ABCI
// connections (proxy.NewLocalClientCreator), so it need not be safe for
// concurrent use, and CheckTx waits while FinalizeBlock or Commit runs.
func Start(ctx context.Context, cfg Config, app abcitypes.Application) (*Node, error) {
	if app == nil {
		return nil, fmt.Errorf("%w: app is nil", ErrConfig)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	logger := cfg.Logger
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	conf, _, err := initHome(cfg)
	if err != nil {
		return nil, err
	}
	applyOverrides(conf, cfg, logger)
	if err := checkSupported(conf); err != nil {
		return nil, err
	}
	return startNode(ctx, conf, app, logger)
}

// startNode builds and starts the CometBFT node for a validated config.
func startNode(ctx context.Context, conf *cmtcfg.Config, app abcitypes.Application, logger *slog.Logger) (*Node, error) {
	pv, err := loadFilePV(conf.PrivValidatorKeyFile(), conf.PrivValidatorStateFile())
	if err != nil {
		return nil, err
	}
	nodeKey, err := loadNodeKey(conf.NodeKeyFile())
	if err != nil {
		return nil, err
	}
	rpc, err := listenRPC(conf.RPC)
	if err != nil {
		return nil, err
	}
	rpcConf := *conf.RPC
	conf.RPC.ListenAddress = "" // served by rpc, not by CometBFT
	n := &Node{rpc: rpc, dbs: &dbSet{}, logger: logger}
	cmtLogger := NewLogger(logger)
	n.cmt, err = nm.NewNode(ctx, conf, pv, nodeKey,
		proxy.NewLocalClientCreator(app),
		nm.DefaultGenesisDocProviderFunc(conf),
		n.dbs.open,
		nm.DefaultMetricsProvider(conf.Instrumentation),
		cmtLogger)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("create node in %s: %w", conf.RootDir, err), rpc.close(), n.dbs.closeAll())
	}
	if err := n.cmt.Start(); err != nil {
		n.cmt.OnStop() // Start does not undo a partial start; OnStop tolerates unstarted parts
		return nil, errors.Join(fmt.Errorf("start node in %s: %w", conf.RootDir, err), n.release())
	}
	if err := rpc.serve(n.cmt, &rpcConf, cmtLogger); err != nil {
		return nil, errors.Join(err, n.Stop())
	}
	logger.Info("validator started", "home", conf.RootDir, "rpc", rpc.addr(),
		"p2p", conf.P2P.ListenAddress, "node_id", nodeKey.ID())
	return n, nil
}

// RPCAddr returns the address the RPC listener is bound to, such as
// "127.0.0.1:43117" (a socket path for unix:// listeners). With several
// listeners in [rpc] laddr it returns the first.
func (n *Node) RPCAddr() string {
	return n.rpc.addr()
}

// Stop shuts the node down: it closes RPC connections, stops consensus and
// p2p, stops the ABCI connections and closes every database. It is
// idempotent; later calls return the first call's result. After Stop
// returns, the same home may be started again in this process.
func (n *Node) Stop() error {
	n.stopOnce.Do(func() {
		// RPC first, so no request reaches a half-stopped node.
		_ = n.rpc.close() // idempotent; release reports its error
		var nodeErr error
		if err := n.cmt.Stop(); err != nil {
			nodeErr = fmt.Errorf("stop node: %w", err)
		}
		n.cmt.Wait()
		n.stopErr = errors.Join(nodeErr, n.release())
		n.logger.Info("validator stopped", "home", n.cmt.Config().RootDir)
	})
	return n.stopErr
}

// release frees what CometBFT's own OnStop leaves behind: RPC handlers, the
// ABCI client connections and the databases.
func (n *Node) release() error {
	errs := []error{n.rpc.close()}
	n.rpc.wait()
	if err := n.cmt.ProxyApp().Stop(); err != nil {
		errs = append(errs, fmt.Errorf("stop abci connections: %w", err))
	}
	if err := n.dbs.closeAll(); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// FirstBlock waits until the node has committed block 1 and returns the
// chain id and that block's header hash: a trust root for light clients
// that this process can vouch for, since it read them from its own block
// store (client.TrustRoot{Chain, Height: 1, Hash}).
func (n *Node) FirstBlock(ctx context.Context) (chainID string, hash []byte, err error) {
	for {
		if meta := n.cmt.BlockStore().LoadBlockMeta(1); meta != nil {
			return meta.Header.ChainID, meta.BlockID.Hash, nil
		}
		select {
		case <-ctx.Done():
			return "", nil, fmt.Errorf("wait for block 1: %w", ctx.Err())
		case <-time.After(20 * time.Millisecond):
		}
	}
}
