package main

import (
	"context"
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/identity"
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
					srv, err := c.NameServers(ctx, args[0])
					if err != nil {
						return err
					}
					out := struct {
						*ledger.NameContract
						Servers []identity.PublicKey `json:"servers"`
					}{n, srv.Keys}
					return g.print(out, func(w io.Writer) {
						fmt.Fprintf(w, "name:    %s\nowner:   twin %d\nsince:   height %d\n", n.Name, n.Owner, n.Claimed)
						for _, k := range srv.Keys {
							fmt.Fprintf(w, "served by: %s\n", k)
						}
					})
				})
			},
		},
		newNameAuthorizeCmd(g))
	return cmd
}

// newNameAuthorizeCmd sets the keys, besides the owner's nodes, that may
// serve a name through gateways.
func newNameAuthorizeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "authorize NAME [KEY...]",
		Short: "Set the keys that may serve a name through gateways (zgrid expose); none clears them",
		Long: `Replaces the keys allowed to open gateway tunnels for NAME. Nodes that run a
gateway-name workload of yours for NAME are allowed without being listed
here; list the keys of other machines that run "zgrid expose NAME".`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !ledger.ValidName(args[0]) {
				return fmt.Errorf("name %q: use 1-63 of a-z, 0-9 and inner hyphens", args[0])
			}
			op := &ledger.NameAuthorize{Name: args[0], Keys: []identity.PublicKey{}}
			for _, s := range args[1:] {
				k, err := identity.ParsePublicKey(s)
				if err != nil {
					if k, err = identity.ParseNodeKey(s); err != nil {
						return fmt.Errorf("key %q: want a zgpub1... or zgnode1... key", s)
					}
				}
				op.Keys = append(op.Keys, k)
			}
			return g.submitOp(cmd, "authorize keys for", ledger.Op{NameAuthorize: op}, func(*client.Result) string {
				return fmt.Sprintf("%d key(s) may serve %s", len(op.Keys), args[0])
			})
		},
	}
}
