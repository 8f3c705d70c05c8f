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
		Short: "Show the ledger's height, app hash and validators",
		Args:  cobra.NoArgs,
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
		fmt.Fprintf(w, "chain:      %s\nheight:     %d\napp hash:   %s\nblock time: %s\n", st.Chain, st.Height, st.AppHash, st.BlockTime)
		if st.CatchingUp {
			fmt.Fprintln(w, "state:      catching up")
		}
		for _, v := range st.Validators {
			fmt.Fprintf(w, "validator:  %s power %d\n", v.Address, v.Power)
		}
	})
}
