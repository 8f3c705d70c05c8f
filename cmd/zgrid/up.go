package main

import (
	"fmt"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/grid"
)

func newUpCmd(g *globals) *cobra.Command {
	cfg := grid.Config{}
	cmd := &cobra.Command{
		Use:   "up --dir DIR [--nodes N]",
		Short: "Run a local development grid: ledger, hub, a farm and N nodes on this machine",
		Long: `Starts, on this machine, a one-validator ledger and a hub in this process,
a farm, and N 'zgridd node' processes, each in its own network namespace. It
pushes the example image (examples/hello) to the hub as hello:latest, writes
DIR/examples/hello.yaml for it, starts a web gateway ('zgridd gateway' for
https://NAME.grid.localhost, its CA in DIR/gateway/ca.crt), claims the name
hello for the user so that the example is served at
https://hello.grid.localhost:8443/ once deployed, writes DIR/grid.json
(endpoints, a user key) and prints 'grid ready', or, when nodes report
conditions (what they cannot run and why), those conditions and 'grid ready
with problems'. Ctrl-C or SIGTERM stops everything and removes the
namespaces; the next 'zgrid up --dir DIR' continues with the same keys,
ledger and hub.

Before it starts anything it checks that this machine has what the grid
needs, and stops with a list of what is missing otherwise:

` + grid.Requirements() + `

zgrid up is also the grid's release manager: it keeps a release repository
of zgridd (The Update Framework) in DIR/release/repo with keys in
DIR/release/keys (root 2 of 3), signs the zgridd it runs as the next release
whenever it changed, and serves the repository from its hub; the nodes run
only the release that verifies and follow new ones ('zgrid release publish
--repo DIR/release/repo --keys …' publishes one by hand).

This is a development grid: its keys are in DIR/keys under a generated
passphrase stored in DIR/keys/passphrase, readable by whoever can read DIR.

  zgrid up --dir /tmp/grid
  zgrid --grid /tmp/grid/grid.json deploy -f /tmp/grid/examples/hello.yaml`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if cfg.Nodes < 1 {
				return fmt.Errorf("--nodes %d: a grid needs at least one node", cfg.Nodes)
			}
			cfg.Namespaces = true
			cfg.Log = slog.New(slog.NewTextHandler(g.stderr, nil))
			cfg.Stdout = g.stdout
			return grid.Run(cmd.Context(), cfg)
		},
	}
	f := cmd.Flags()
	f.StringVar(&cfg.Dir, "dir", "", "directory for the grid's state (created if missing; reused by the next run)")
	f.IntVar(&cfg.Nodes, "nodes", 3, "number of nodes")
	f.StringVar(&cfg.LedgerAddr, "ledger-addr", "127.0.0.1:26657", "ledger RPC listen address")
	f.StringVar(&cfg.HubAddr, "hub-addr", "127.0.0.1:5000", "hub listen address")
	f.StringVar(&cfg.GatewayAddr, "gateway-addr", "127.0.0.1:8443", "web gateway HTTPS listen address (https://NAME.grid.localhost:PORT)")
	f.StringVar(&cfg.Zgridd, "zgridd", "", "zgridd binary (default: next to zgrid, on PATH, or built from the source tree into DIR/bin)")
	f.DurationVar(&cfg.BlockInterval, "block-interval", 0, "ledger block time (default 500ms)")
	f.DurationVar(&cfg.Heartbeat, "heartbeat", 0, "node heartbeat period (default 10s)")
	f.DurationVar(&cfg.ReleaseEvery, "release-every", 0, "how often nodes check the hub for a new release of zgridd (default 10s)")
	return cmd
}

// useGrid points g at the grid described by path (a grid.json written by
// `zgrid up`): its ledger, its user key, whose passphrase it puts in
// ZGRID_PASSPHRASE unless that is already set, and its hub and nodes for
// deploy. applyGrid calls it for --grid and then restores what the user
// set explicitly.
func (g *globals) useGrid(path string) error {
	f, err := grid.Load(filepath.Clean(path))
	if err != nil {
		return err
	}
	g.ledger, g.keyPath, g.trustFile, g.gridFile = f.Ledger, f.UserKey, f.Trust, f
	if os.Getenv("ZGRID_PASSPHRASE") == "" {
		pass, err := f.Passphrase()
		if err != nil {
			return err
		}
		return os.Setenv("ZGRID_PASSPHRASE", string(pass))
	}
	return nil
}
