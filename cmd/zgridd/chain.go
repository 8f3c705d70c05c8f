package main

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"time"

	dbm "github.com/cometbft/cometbft-db"
	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/chain"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
)

type chainFlags struct {
	home, rpc, p2p, chainID string
	blockInterval           time.Duration
	acceptDeadline          int64
}

func newChainCmd(g *globals) *cobra.Command {
	f := &chainFlags{}
	cmd := &cobra.Command{
		Use:   "chain --home DIR",
		Short: "Run a ledger validator (CometBFT with the zerogrid application, in one process)",
		Long: `Runs one ledger validator in this process. On the first run in an empty
--home it creates the validator's keys and a one-validator genesis, so
'zgridd chain --home DIR' alone gives a working ledger. Homes written by
'zgridd chain testnet' join a multi-validator network instead.

The RPC (queries and transaction submission) listens on 127.0.0.1 unless
--rpc says otherwise. Once block 1 is committed the validator writes
HOME/trust.json: the chain id and block 1's hash, read from its own store.
Clients verify every answer from a root like it ('zgrid --trust-options',
'zgridd node --trust-root', 'zgridd gateway --trust-root'): hand it to them
by a channel you trust. Stop with Ctrl-C or SIGTERM: the state is on disk and
the next start continues from the last committed block.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runChain(cmd, g, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.home, "home", "", "validator home directory (created if missing)")
	fl.StringVar(&f.rpc, "rpc", "", "RPC listen address host:port (default 127.0.0.1:26657, or what the home's config.toml says)")
	fl.StringVar(&f.p2p, "p2p", "", "p2p listen address host:port (default 127.0.0.1:26656, or config.toml)")
	fl.StringVar(&f.chainID, "chain-id", "", "chain id for a new genesis (default zerogrid-local)")
	fl.DurationVar(&f.blockInterval, "block-interval", 0, "target time between blocks (default 500ms, or config.toml)")
	fl.Int64Var(&f.acceptDeadline, "accept-deadline-blocks", ledger.DefaultParams().AcceptDeadlineBlocks, "for a new genesis: blocks a contract waits for its node to accept it before it expires")
	cmd.AddCommand(newTestnetCmd(g))
	return cmd
}

func runChain(cmd *cobra.Command, g *globals, f *chainFlags) error {
	if f.home == "" {
		return fmt.Errorf("--home DIR is required: the validator's state lives there")
	}
	params := ledger.DefaultParams()
	params.AcceptDeadlineBlocks = f.acceptDeadline
	appState, err := ledger.MarshalGenesis(ledger.GenesisState{Params: params})
	if err != nil {
		return err
	}
	log := g.logger()
	if err := os.MkdirAll(filepath.Join(f.home, "data"), 0o700); err != nil {
		return err
	}
	db, err := dbm.NewGoLevelDB("zerogrid-app", filepath.Join(f.home, "data"))
	if err != nil {
		return fmt.Errorf("open application state in %s: %w (is another zgridd using this home?)", f.home, err)
	}
	defer db.Close()
	app, err := ledger.NewApp(db, ledger.Options{Logger: log.With("module", "ledger")})
	if err != nil {
		return err
	}
	node, err := chain.Start(cmd.Context(), chain.Config{
		Home: f.home, ChainID: f.chainID, RPCAddr: f.rpc, P2PAddr: f.p2p,
		BlockInterval: f.blockInterval, AppState: appState, Logger: g.cometLogger(),
	}, app)
	if err != nil {
		return err
	}
	h, _ := app.Height()
	fmt.Fprintf(cmd.OutOrStdout(), "ledger ready: rpc http://%s height %d home %s\n", node.RPCAddr(), h, f.home)
	trustDone := make(chan struct{})
	go func() {
		defer close(trustDone)
		writeTrustRoot(cmd.Context(), cmd.OutOrStdout(), node, filepath.Join(f.home, "trust.json"), log)
	}()
	<-cmd.Context().Done()
	<-trustDone
	log.Info("stopping validator")
	return node.Stop()
}

// writeTrustRoot writes the chain's trust root (block 1, from the
// validator's own store) to path once block 1 exists.
func writeTrustRoot(ctx context.Context, out io.Writer, n *chain.Node, path string, log *slog.Logger) {
	id, hash, err := n.FirstBlock(ctx)
	if err != nil {
		return // stopped before block 1
	}
	root := client.TrustRoot{Chain: id, Height: 1, Hash: hash, Period: client.DefaultTrustPeriod}
	if err := client.WriteTrustFile(path, root); err != nil {
		log.Warn("write trust root", "file", path, "err", err)
		return
	}
	fmt.Fprintf(out, "trust root: %s (chain %s, block 1 %s)\n", path, id, root.Hash)
}

func newTestnetCmd(g *globals) *cobra.Command {
	var out, chainID, hosts string
	var n, basePort int
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "testnet --validators N --out DIR",
		Short: "Write the homes of an N-validator ledger network",
		Long: `Writes DIR/node0 … DIR/node{N-1}: each a validator home with its own keys,
the same genesis listing all N validators, and the others as persistent
peers. Start each with 'zgridd chain --home DIR/nodeI'. By default all
listen on 127.0.0.1 with distinct ports from --base-port; --hosts gives
each validator its own IP (for example one per network namespace).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" || n < 1 {
				return fmt.Errorf("--out DIR and --validators N (N ≥ 1) are required")
			}
			appState, err := ledger.MarshalGenesis(ledger.GenesisState{Params: ledger.DefaultParams()})
			if err != nil {
				return err
			}
			opts := chain.TestnetOptions{Validators: n, ChainID: chainID, BasePort: basePort, BlockInterval: interval, AppState: appState}
			if hosts != "" {
				opts.Hosts = strings.Split(hosts, ",")
			}
			homes, err := chain.WriteTestnet(out, opts)
			if err != nil {
				return err
			}
			for _, h := range homes {
				fmt.Fprintln(cmd.OutOrStdout(), h)
			}
			return nil
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&out, "out", "", "directory to write the homes into")
	fl.IntVar(&n, "validators", 4, "number of validators")
	fl.StringVar(&chainID, "chain-id", "", "chain id (default zerogrid-local)")
	fl.StringVar(&hosts, "hosts", "", "comma-separated IP per validator (default: all 127.0.0.1)")
	fl.IntVar(&basePort, "base-port", 0, "first port when all validators share a host (default 26600)")
	fl.DurationVar(&interval, "block-interval", 0, "target time between blocks (default 500ms)")
	return cmd
}
