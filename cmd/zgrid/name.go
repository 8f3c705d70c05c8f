package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
)

func newNameCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "name", Short: "Claim, release and look up gateway names"}
	op := func(use, short, done string, mk func(string) ledger.Op) *cobra.Command {
		return &cobra.Command{
			Use: use, Short: short, Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if !ledger.ValidName(args[0]) {
					return fmt.Errorf("name %q: use 1-63 of a-z, 0-9 and inner hyphens", args[0])
				}
				return g.submitOp(cmd, cmd.Name()+" name", mk(args[0]), func(*client.Result) string { return done + " " + args[0] })
			},
		}
	}
	cmd.AddCommand(
		op("claim NAME", "Claim a gateway name for your twin", "claimed", func(n string) ledger.Op {
			return ledger.Op{NameClaim: &ledger.NameClaim{Name: n}}
		}),
		op("release NAME", "Release a gateway name you hold", "released", func(n string) ledger.Op {
			return ledger.Op{NameRelease: &ledger.NameRelease{Name: n}}
		}),
		&cobra.Command{
			Use: "show NAME", Short: "Show who holds a name", Args: cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
					n, err := c.Name(ctx, args[0])
					if err != nil {
						return err
					}
					return g.print(n, func(w io.Writer) {
						fmt.Fprintf(w, "name:  %s\nowner: twin %d\nsince: height %d\n", n.Name, n.Owner, n.Claimed)
					})
				})
			},
		})
	return cmd
}
