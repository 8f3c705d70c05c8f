package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/grid"
	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
)

// globals are the flags every command shares.
type globals struct {
	grid         string
	ledger       string
	trustFile    string
	trustOptions string
	keyPath      string
	output       string
	timeout      time.Duration
	stdout       io.Writer
	stderr       io.Writer

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
ledger, which validators replicate with Byzantine fault tolerance.

zgrid trusts no validator for what it reads: every answer comes with a
proof checked against a block header that zgrid verifies itself with
CometBFT's light client, from a trusted state it keeps in a file (--trust).
With --grid that file is the grid's own (written by 'zgrid up'). Otherwise,
the first time zgrid talks to a ledger it trusts that ledger's newest block
(trust on first use: it says so on stderr) and verifies everything after it
from there; to pin a chain from a source you trust instead, pass
--trust-options HEIGHT:HASH, as 'zgrid chain status' prints them on a
machine you trust.`,
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
	f.StringVar(&g.trustFile, "trust", os.Getenv("ZGRID_TRUST"), "trusted ledger state file, kept current as zgrid verifies newer blocks (default: the grid's, or one per ledger URL under your config directory; env ZGRID_TRUST)")
	f.StringVar(&g.trustOptions, "trust-options", "", "HEIGHT:HASH of a block header to trust (from `zgrid chain status` on a machine you trust); replaces the trusted state")
	root.AddCommand(newKeyCmd(g), newTwinCmd(g), newChainCmd(g), newFarmCmd(g), newNameCmd(g), newImageCmd(g), newReleaseCmd(g))
	root.AddCommand(newEventsCmd(g), newDeployCmd(g), newUpdateCmd(g), newStatusCmd(g), newCancelCmd(g), newUpCmd(g), newStoreCmd(g))
	root.AddCommand(newExposeCmd(g))
	root.AddCommand(newPasskeyCmd(g), newLoginCmd(g))
	root.AddCommand(newOSCmd(g))
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

// dial connects to the ledger, verifying from the trusted state file.
func (g *globals) dial(ctx context.Context) (*client.Client, error) {
	path := g.trustFile
	if path == "" {
		var err error
		if path, err = defaultTrustFile(g.ledger); err != nil {
			return nil, err
		}
	}
	c, err := client.Dial(ctx, g.ledger, client.Options{CommitTimeout: g.timeout,
		TrustFile: path, TrustOptions: g.trustOptions, TrustOnFirstUse: true,
		OnFirstUse: func(r client.TrustRoot) {
			fmt.Fprintf(g.stderr, "zgrid: first use of the ledger at %s: trusting chain %s at block %d (hash %s), saved in %s; everything later is verified from it. To pin another block, pass --trust-options HEIGHT:HASH.\n",
				g.ledger, r.Chain, r.Height, r.Hash, path)
		}})
	if errors.Is(err, client.ErrUntrusted) && g.trustFile == "" {
		// A ledger started anew at an address used before (a fresh local
		// grid) is another chain to the state trusted on first use.
		return nil, fmt.Errorf("%w\n(the trusted state for %s was saved on first use in %s: if a new ledger now runs at that address, and only then, delete that file or pass --trust FILE / --grid FILE)", err, g.ledger, path)
	}
	return c, err
}

// defaultTrustFile is where zgrid keeps the trusted state of a ledger
// it was not given a file for: one file per ledger URL.
func defaultTrustFile(ledgerURL string) (string, error) {
	dir, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("no config directory for the trusted ledger state (%v): pass --trust FILE", err)
	}
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, strings.TrimPrefix(strings.TrimPrefix(ledgerURL, "http://"), "https://"))
	return filepath.Join(dir, "zgrid", "trust", name+".json"), nil
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
	ledger, key, trust := g.ledger, g.keyPath, g.trustFile
	if err := g.useGrid(g.grid); err != nil {
		return fmt.Errorf("--grid %s: %w", g.grid, err)
	}
	if cmd.Flags().Changed("ledger") {
		g.ledger = ledger
	}
	if trust != "" {
		g.trustFile = trust
	}
	if cmd.Flags().Changed("key") {
		g.keyPath = key
	}
	return nil
}
