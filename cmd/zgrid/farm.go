package main

import (
	"context"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
)

func newFarmCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "farm", Short: "Create and inspect farms (groups of nodes you own)"}
	cmd.AddCommand(&cobra.Command{
		Use:   "create NAME",
		Short: "Create a farm owned by your twin; prints the farm id",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.submitOp(cmd, "create farm", ledger.Op{FarmCreate: &ledger.FarmCreate{Name: args[0]}}, idText)
		},
	}, &cobra.Command{
		Use:   "show ID",
		Short: "Show a farm",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("farm id %q: want a number", args[0])
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				f, err := c.Farm(ctx, id)
				if err != nil {
					return err
				}
				return g.print(f, func(w io.Writer) {
					fmt.Fprintf(w, "farm:  %d\nname:  %s\nowner: twin %d\n", f.ID, f.Name, f.Owner)
				})
			})
		},
	})
	return cmd
}
