// Command zgridd runs zerogrid's daemons: the ledger validator (`chain`),
// the node agent (`node`), the image hub (`hub`) and the storage backend
// server (`zdb`). It only
// parses flags and wires internal packages.
package main

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

func main() {
	if asInit() {
		os.Args = []string{"zgridd", "init"}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot().ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "zgridd: "+err.Error())
		os.Exit(1)
	}
}

type globals struct {
	logLevel string
}

func (g *globals) level() slog.Level {
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(g.logLevel)); err != nil {
		lvl = slog.LevelInfo
	}
	return lvl
}

func (g *globals) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: g.level()}))
}

// cometLogger is for CometBFT, which logs every block and peer at info: it
// gets warnings only, unless --log-level debug asks for everything.
func (g *globals) cometLogger() *slog.Logger {
	lvl := max(g.level(), slog.LevelWarn)
	if g.level() <= slog.LevelDebug {
		lvl = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: lvl})).With("module", "cometbft")
}

func newRoot() *cobra.Command {
	g := &globals{}
	root := &cobra.Command{
		Use:           "zgridd",
		Short:         "zerogrid daemons",
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.PersistentFlags().StringVar(&g.logLevel, "log-level", "info", "log level: debug, info, warn or error")
	root.AddCommand(newChainCmd(g))
	root.AddCommand(newZDBCmd(g))
	root.AddCommand(newHubCmd(g))
	root.AddCommand(newNodeCmd(g))
	root.AddCommand(newGatewayCmd(g))
	root.AddCommand(newTunnelClientCmd(g))
	root.AddCommand(newPortalCmd(g))
	root.AddCommand(newQSFSMountCmd(g))
	root.AddCommand(newInitCmd())
	return root
}
