package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/grid"
	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
)

// globals are the flags every command shares.
type globals struct {
	grid    string
	ledger  string
	keyPath string
	output  string
	timeout time.Duration
	stdout  io.Writer
	stderr  io.Writer

	// gridFile is the grid.json --grid names, once applyGrid has read it.
	gridFile *grid.File
}

func newRoot(stdout, stderr io.Writer) *cobra.Command {
	g := &globals{stdout: stdout, stderr: stderr}
	root := &cobra.Command{
		Use:   "zgrid",
		Short: "zerogrid: a secure, decentralized cloud",
		Long: `zgrid is the zerogrid user's tool.

Keys never leave your machine: a key file is encrypted under a passphrase
(asked for at a prompt, or read from ZGRID_PASSPHRASE for scripts). Every
change you make is a transaction signed with your key and recorded on the
ledger, which validators replicate with Byzantine fault tolerance.`,
		SilenceUsage:  true,
		SilenceErrors: true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			if g.output != "text" && g.output != "json" {
				return fmt.Errorf("-o %q: want text or json", g.output)
			}
			return g.applyGrid(cmd)
		},
	}
	f := root.PersistentFlags()
	f.StringVar(&g.ledger, "ledger", envOr("ZGRID_LEDGER", "http://127.0.0.1:26657"), "ledger RPC URL (env ZGRID_LEDGER)")
	f.StringVar(&g.keyPath, "key", os.Getenv("ZGRID_KEY"), "your key file (env ZGRID_KEY)")
	f.StringVarP(&g.output, "output", "o", "text", "output format: text or json")
	f.StringVar(&g.grid, "grid", os.Getenv("ZGRID_GRID"), "a local grid's grid.json (from `zgrid up`): its ledger, key and passphrase, and for deploy its hub and first node (env ZGRID_GRID)")
	f.DurationVar(&g.timeout, "timeout", 2*time.Minute, "give up on ledger operations after this long")
	root.AddCommand(newKeyCmd(g), newTwinCmd(g), newChainCmd(g), newFarmCmd(g), newNameCmd(g), newImageCmd(g))
	root.AddCommand(newEventsCmd(g), newDeployCmd(g), newUpdateCmd(g), newStatusCmd(g), newCancelCmd(g), newUpCmd(g), newStoreCmd(g))
	root.AddCommand(newExposeCmd(g))
	return root
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// print writes v as JSON with -o json, else calls text.
func (g *globals) print(v any, text func(w io.Writer)) error {
	if g.output == "json" {
		enc := json.NewEncoder(g.stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	text(g.stdout)
	return nil
}

// loadKey opens the key file named by --key.
func (g *globals) loadKey() (*identity.KeyFile, error) {
	if g.keyPath == "" {
		return nil, fmt.Errorf("no key file: pass --key FILE (make one with `zgrid key new --out FILE`)")
	}
	if _, err := os.Stat(g.keyPath); err != nil {
		return nil, fmt.Errorf("key file: %w (make one with `zgrid key new --out FILE`)", err)
	}
	pass, err := identity.Passphrase("Passphrase for "+g.keyPath+": ", false, os.Stdin, g.stderr)
	if err != nil {
		return nil, err
	}
	return identity.ReadKeyFile(g.keyPath, pass)
}

// dial connects to the ledger.
func (g *globals) dial(ctx context.Context) (*client.Client, error) {
	return client.Dial(ctx, g.ledger, client.Options{CommitTimeout: g.timeout})
}

// withTimeout bounds a command's ledger work.
func (g *globals) withTimeout(ctx context.Context) (context.Context, context.CancelFunc) {
	return context.WithTimeout(ctx, g.timeout)
}

// applyGrid takes the ledger, key, passphrase, hub and nodes from --grid,
// except what --ledger or --key set explicitly.
func (g *globals) applyGrid(cmd *cobra.Command) error {
	if g.grid == "" {
		return nil
	}
	ledger, key := g.ledger, g.keyPath
	if err := g.useGrid(g.grid); err != nil {
		return fmt.Errorf("--grid %s: %w", g.grid, err)
	}
	if cmd.Flags().Changed("ledger") {
		g.ledger = ledger
	}
	if cmd.Flags().Changed("key") {
		g.keyPath = key
	}
	return nil
}
