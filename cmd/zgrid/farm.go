package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
	zgnode "github.com/zerogrid/zerogrid/internal/node"
)

func newFarmCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "farm", Short: "Create and inspect farms (groups of nodes you own)"}
	cmd.AddCommand(newFarmApproveCmd(g), &cobra.Command{
		Use:   "create NAME",
		Short: "Create a farm owned by your twin; prints the farm id",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return g.withSession(cmd, func(ctx context.Context, s *session) error {
				res, err := s.submit(ctx, "create farm", ledger.Op{FarmCreate: &ledger.FarmCreate{Name: args[0]}})
				if err != nil {
					return err
				}
				// The id comes from the validator's commit notice: print it
				// only once the verified state shows this farm as ours.
				a, err := s.client.Account(ctx, s.key.Public())
				if err != nil {
					return fmt.Errorf("farm created, but reading it back with a proof failed: %w", err)
				}
				f, err := s.client.Farm(ctx, res.ID)
				if err != nil || f.Owner != a.Twin || f.Name != args[0] {
					return fmt.Errorf("the validator announced farm %d, but the verified ledger does not show it as your farm %q (%v): the validator lies; use another (--ledger)", res.ID, args[0], err)
				}
				return printTx(g, res, idText(res))
			})
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
				all, err := c.Nodes(ctx)
				if err != nil {
					return err
				}
				out := farmView{Farm: f, Nodes: []farmNode{}}
				for _, n := range all {
					if n.Farm == f.ID {
						out.Nodes = append(out.Nodes, farmNode{Node: n, Key: n.Key.NodeString()})
					}
				}
				return g.print(out, func(w io.Writer) {
					fmt.Fprintf(w, "farm:  %d\nname:  %s\nowner: twin %d\n", f.ID, f.Name, f.Owner)
					if len(out.Nodes) == 0 {
						return
					}
					tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
					fmt.Fprintln(tw, "\nNODE\tRELEASE\tLAST HEARTBEAT\tCONDITIONS")
					for _, n := range out.Nodes {
						seen, conds := "never", "-"
						if n.LastHeartbeat > 0 {
							seen = time.Unix(n.LastHeartbeat, 0).UTC().Format(time.RFC3339)
						}
						if n.Removed > 0 {
							seen = "removed"
						}
						var cs []string
						for _, c := range n.Conditions {
							cs = append(cs, c.Type+": "+c.Reason)
						}
						if len(cs) > 0 {
							conds = strings.Join(cs, "; ")
						}
						fmt.Fprintf(tw, "%d\t%s\t%s\t%s\n", n.ID, n.Version, seen, conds)
					}
					tw.Flush()
				})
			})
		},
	}, &cobra.Command{
		Use:   "remove-node ID",
		Short: "Remove a node of your farm for good: it signs nothing more and leaves the overlay",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil || id == 0 {
				return fmt.Errorf("node id %q: want a positive number", args[0])
			}
			return g.submitOp(cmd, "remove node", ledger.Op{FarmRemoveNode: &ledger.FarmRemoveNode{Node: id}}, func(*client.Result) string {
				return fmt.Sprintf("removed node %d", id)
			})
		},
	})
	return cmd
}

func newFarmApproveCmd(g *globals) *cobra.Command {
	var farm uint64
	var node, out string
	var valid time.Duration
	cmd := &cobra.Command{
		Use:   "approve-node --farm ID --node zgnode1… --out FILE",
		Short: "Sign your consent for a node key to join your farm",
		Long: `Signs, with your key (--key, the farm owner's), your consent for the node
key to register in the farm, and writes it to FILE for the node's operator:
'zgridd node … --approval FILE'. The approval is bound to this ledger, the
farm and that one key, and expires after --valid. The file also carries the
newest ledger block zgrid verified, so that the node, on its first start,
verifies the ledger from what you trust rather than from whatever validator
it reaches: hand the file over by a channel you trust.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			nk, err := identity.ParseNodeKey(node)
			if err != nil {
				return fmt.Errorf("--node %q: %w (a node prints its key with `zgrid key show --key NODE.key`)", node, err)
			}
			if farm == 0 || out == "" {
				return fmt.Errorf("--farm ID and --out FILE are required")
			}
			return g.withSession(cmd, func(ctx context.Context, s *session) error {
				f, err := s.client.Farm(ctx, farm)
				if err != nil {
					return err
				}
				ap, err := zgnode.NewApprovalFile(ctx, s.client, s.key.Key, f.ID, nk, time.Now().Add(valid).Unix())
				if err != nil {
					return err
				}
				b, err := json.MarshalIndent(ap, "", "  ")
				if err != nil {
					return err
				}
				if err := os.WriteFile(out, append(b, '\n'), 0o600); err != nil {
					return err
				}
				return g.print(ap, func(w io.Writer) {
					fmt.Fprintf(w, "wrote %s: node %s may join farm %d until %s\n", out, node, f.ID, time.Unix(ap.Body.Expires, 0).UTC().Format(time.RFC3339))
				})
			})
		},
	}
	cmd.Flags().Uint64Var(&farm, "farm", 0, "your farm's id")
	cmd.Flags().StringVar(&node, "node", "", "the node's key (zgnode1…)")
	cmd.Flags().StringVar(&out, "out", "", "approval file to write")
	cmd.Flags().DurationVar(&valid, "valid", 24*time.Hour, "how long the approval may be used")
	return cmd
}

// farmView is what `zgrid farm show` prints: the farm and its nodes, each
// with the release it reports running and its conditions.
type farmView struct {
	*ledger.Farm
	Nodes []farmNode `json:"nodes"`
}

type farmNode struct {
	ledger.Node
	Key string `json:"key"`
}
