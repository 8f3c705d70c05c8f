package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/zerogrid/zerogrid/internal/storage/catalog"
)

// storeCmd holds what the store subcommands share.
type storeCmd struct {
	g      *globals
	config string
	getenv func(string) string
}

func newStoreCmd(g *globals) *cobra.Command {
	sc := &storeCmd{g: g, getenv: os.Getenv}
	cmd := &cobra.Command{
		Use:   "store",
		Short: "Dispersed, encrypted, erasure-coded storage",
		Long: `store keeps files on the backends of a configuration file, encrypted and
erasure-coded so that no single backend holds enough to read anything and
losing up to m backends loses nothing.

Every command needs your 24-word mnemonic (from ZGRID_MNEMONIC or a prompt):
the keys are derived from it each time and never stored. The mnemonic and the
configuration file are all a new machine needs to read the store back.`,
	}
	cmd.PersistentFlags().StringVar(&sc.config, "config", "", "store configuration file (YAML: k, m, segment_size, backends)")
	cmd.AddCommand(sc.initCmd(), sc.putCmd(), sc.getCmd(), sc.lsCmd())
	cmd.AddCommand(sc.mountCmd())
	cmd.AddCommand(sc.storeOpsCmds()...)
	cmd.AddCommand(sc.s3Cmds()...)
	return cmd
}

// open loads the config, reads the mnemonic and opens (or, with create,
// initialises) the store. The returned func releases it.
func (sc *storeCmd) open(ctx context.Context, create bool) (*catalog.Store, func(), error) {
	if sc.config == "" {
		return nil, nil, errors.New("no configuration: pass --config FILE")
	}
	cfg, err := catalog.LoadConfig(sc.config)
	if err != nil {
		return nil, nil, err
	}
	m, err := catalog.Mnemonic(sc.getenv, os.Stdin, sc.g.stderr)
	if err != nil {
		return nil, nil, err
	}
	secret, err := catalog.StorageSecret(m)
	if err != nil {
		return nil, nil, err
	}
	defer clear(secret)
	log := slog.New(slog.NewTextHandler(sc.g.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	bs, err := cfg.OpenBackends(log)
	if err != nil {
		return nil, nil, err
	}
	opts := catalog.Options{Params: cfg.Params(), Backends: bs, Logger: log}
	var s *catalog.Store
	if create {
		s, err = catalog.Init(ctx, opts, secret)
	} else {
		s, err = catalog.Open(ctx, opts, secret)
	}
	if err != nil {
		catalog.CloseBackends(bs)
		if errors.Is(err, catalog.ErrNoRoot) || errors.Is(err, catalog.ErrForeignStore) || errors.Is(err, catalog.ErrExists) {
			err = fmt.Errorf("%w: nothing written", err)
		}
		return nil, nil, err
	}
	return s, func() { s.Close(); catalog.CloseBackends(bs) }, nil
}

func (sc *storeCmd) initCmd() *cobra.Command {
	var fc fromContracts
	cmd := &cobra.Command{
		Use:   "init --config FILE [--from-contracts ID,ID,…]",
		Short: "Create an empty store on the configured backends",
		Long: `init creates an empty store on the backends of --config. With
--from-contracts it first writes --config from the zdb workloads of those
contracts, as the ledger shows them (address on their node's overlay,
namespace, the node as failure domain, the password from $ZDB_PASSWORD);
the store is then created over them, which needs a machine on the overlay.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if fc.ids != "" {
				if err := fc.write(cmd, sc.g, sc.config); err != nil {
					return err
				}
			}
			s, done, err := sc.open(cmd.Context(), true)
			if err != nil {
				return err
			}
			defer done()
			fmt.Fprintf(sc.g.stdout, "store initialised (root %d)\n", s.Seq())
			return nil
		},
	}
	fc.flags(cmd)
	return cmd
}

func (sc *storeCmd) putCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "put --config FILE SRC NAME",
		Short: "Store the file SRC as NAME, replacing any file of that name",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := catalog.ValidName(args[1]); err != nil {
				return err
			}
			fi, err := os.Stat(args[0])
			if err != nil {
				return err
			}
			s, done, err := sc.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer done()
			bar := newProgress(sc.g.stderr, "put "+args[1], fi.Size())
			res, err := s.PutFile(cmd.Context(), args[0], args[1], bar.update)
			bar.finish()
			if err != nil {
				return err
			}
			if res.Missing > 0 {
				fmt.Fprintf(sc.g.stderr, "warning: %d shards could not be stored; %s is readable with reduced redundancy until it is repaired: run `zgrid store repair --config %s` once the backends are back (a mount repairs in the background)\n", res.Missing, args[1], sc.config)
			}
			fmt.Fprintf(sc.g.stdout, "%s: %d bytes in %d segments\n", args[1], res.Entry.Size, len(res.Entry.Segments))
			return nil
		},
	}
}

func (sc *storeCmd) getCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "get --config FILE NAME DST",
		Short: "Write the stored file NAME to DST (complete or not at all)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, done, err := sc.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer done()
			e, ok := s.Lookup(args[0])
			if !ok {
				return fmt.Errorf("%w: %q (list files with `zgrid store ls`)", catalog.ErrNotFound, args[0])
			}
			bar := newProgress(sc.g.stderr, "get "+args[0], e.Size)
			_, bad, err := s.GetFile(cmd.Context(), args[0], args[1], bar.update)
			bar.finish()
			if err != nil {
				return err
			}
			if bad > 0 {
				fmt.Fprintf(sc.g.stderr, "warning: %d shards were missing or corrupt and were read around: run `zgrid store repair --config %s`\n", bad, sc.config)
			}
			fmt.Fprintf(sc.g.stdout, "%s: %d bytes\n", args[1], e.Size)
			return nil
		},
	}
}

// lsEntry is one line of `store ls -o json`.
type lsEntry struct {
	Name  string    `json:"name"`
	Size  int64     `json:"size"`
	Mode  string    `json:"mode"`
	MTime time.Time `json:"mtime"`
}

func (sc *storeCmd) lsCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "ls --config FILE [PREFIX]",
		Short: "List stored files, optionally only those whose name starts with PREFIX",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, done, err := sc.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer done()
			prefix := ""
			if len(args) == 1 {
				prefix = args[0]
			}
			out := []lsEntry{}
			for _, e := range s.List(prefix) {
				out = append(out, lsEntry{Name: e.Name, Size: e.Size, Mode: fmt.Sprintf("%04o", e.Mode), MTime: time.Unix(0, e.MTime).UTC()})
			}
			return sc.g.print(out, func(w io.Writer) {
				for _, e := range out {
					fmt.Fprintf(w, "%12d  %s  %s\n", e.Size, e.MTime.Format(time.DateTime), e.Name)
				}
			})
		},
	}
}

// progress draws one line on a terminal; on anything else it does nothing.
type progress struct {
	w     io.Writer // nil: not a terminal
	label string
	total int64
	last  time.Time
	n     int64
}

func newProgress(w io.Writer, label string, total int64) *progress {
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return &progress{}
	}
	return &progress{w: w, label: label, total: total}
}

func (p *progress) update(n int64) {
	p.n = n
	if p.w == nil || time.Since(p.last) < 200*time.Millisecond {
		return
	}
	p.last = time.Now()
	p.draw()
}

func (p *progress) draw() {
	pct := 100.0
	if p.total > 0 {
		pct = 100 * float64(p.n) / float64(p.total)
	}
	fmt.Fprintf(p.w, "\r%s: %.1f / %.1f MiB (%3.0f%%)", p.label, float64(p.n)/(1<<20), float64(p.total)/(1<<20), pct)
}

func (p *progress) finish() {
	if p.w != nil && !p.last.IsZero() {
		p.draw()
		fmt.Fprintln(p.w)
	}
}
