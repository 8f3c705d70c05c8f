package main

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
)

// withClient runs fn with a ledger connection, bounded by --timeout.
func (g *globals) withClient(cmd *cobra.Command, fn func(ctx context.Context, c *client.Client) error) error {
	ctx, cancel := g.withTimeout(cmd.Context())
	defer cancel()
	c, err := g.dial(ctx)
	if err != nil {
		return err
	}
	defer c.Close()
	return fn(ctx, c)
}

// withSession runs fn with the --key file loaded and a ledger connection.
func (g *globals) withSession(cmd *cobra.Command, fn func(ctx context.Context, s *session) error) error {
	ctx, cancel := g.withTimeout(cmd.Context())
	defer cancel()
	s, err := g.session(ctx)
	if err != nil {
		return err
	}
	defer s.close()
	return fn(ctx, s)
}

// submitOp signs op with --key, waits for its commit and prints the result
// (text(res) in text mode).
func (g *globals) submitOp(cmd *cobra.Command, what string, op ledger.Op, text func(*client.Result) string) error {
	return g.withSession(cmd, func(ctx context.Context, s *session) error {
		res, err := s.submit(ctx, what, op)
		if err != nil {
			return err
		}
		return printTx(g, res, text(res))
	})
}

func idText(res *client.Result) string { return fmt.Sprint(res.ID) }
