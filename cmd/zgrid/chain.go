package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/ledger/client"
)

func newChainCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "chain", Short: "Inspect the ledger"}
	cmd.AddCommand(&cobra.Command{
		Use:   "status",
		Short: "Show the ledger's newest verified block, its app hash and validators",
		Long: `Shows the newest block header zgrid verified (with CometBFT's light
client, from its trusted state), its hash and app hash, and the validator
set that signed it. The height and hash are what another machine can pin
with --trust-options HEIGHT:HASH.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				st, err := c.Status(ctx)
				if err != nil {
					return err
				}
				return printStatus(g, st)
			})
		},
	})
	return cmd
}

func printStatus(g *globals, st *client.Status) error {
	return g.print(st, func(w io.Writer) {
		fmt.Fprintf(w, "chain:      %s\nheight:     %d (verified)\nhash:       %s\napp hash:   %s\nblock time: %s\ntrust:      --trust-options %d:%s\n",
			st.Chain, st.Height, st.Hash, st.AppHash, st.BlockTime, st.Height, st.Hash)
		if st.CatchingUp {
			fmt.Fprintln(w, "state:      catching up")
		}
		for _, v := range st.Validators {
			fmt.Fprintf(w, "validator:  %s power %d\n", v.Address, v.Power)
		}
	})
}
