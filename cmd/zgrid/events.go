package main

import (
	"context"
	"fmt"
	"io"
	"strconv"
	"time"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/ledger/client"
)

func newEventsCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "events ID",
		Short: "Show a deployment's event log, verified against the node's signatures and the ledger",
		Long: `Shows everything the node did for deployment contract ID, from the events
it reported to the ledger. Every event is signed by the node and names the
one before it by hash; the chain must end at the head the ledger holds. A log
that does not verify is shown with an error saying where it breaks.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id, err := strconv.ParseUint(args[0], 10, 64)
			if err != nil {
				return fmt.Errorf("contract id %q: want a number", args[0])
			}
			return g.withClient(cmd, func(ctx context.Context, c *client.Client) error {
				log, err := c.ContractEvents(ctx, id)
				if log == nil {
					return err
				}
				if perr := printEvents(g, log); perr != nil {
					return perr
				}
				return err
			})
		},
	}
}

func printEvents(g *globals, log *client.ContractLog) error {
	return g.print(log, func(w io.Writer) {
		for _, s := range log.Events {
			e := s.Event
			t := time.UnixMilli(e.Time).UTC().Format("2006-01-02 15:04:05.000")
			fmt.Fprintf(w, "%4d  %s  gen %d  %-14s %-12s %s\n", e.Seq, t, e.Generation, e.Kind, e.Workload, e.Reason)
		}
		if log.Verified {
			fmt.Fprintf(w, "verified: %d events signed by node %d, chain ends at the ledger's head %x\n", len(log.Events), log.Node, log.Head[:8])
		}
	})
}
