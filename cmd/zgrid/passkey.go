package main

import (
	"bufio"
	"context"
	"encoding/base64"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/auth"
	"github.com/zerogrid/zerogrid/internal/ledger"
)

func newPasskeyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "passkey", Short: "Passkeys (WebAuthn) as devices of your twin"}
	cmd.AddCommand(newPasskeyAddCmd(g))
	return cmd
}

func newPasskeyAddCmd(g *globals) *cobra.Command {
	var yes bool
	cmd := &cobra.Command{
		Use:   "add TOKEN",
		Short: "Make a passkey created on the portal a device of your twin, signed with --key",
		Long: `The portal's registration page creates a passkey in your browser and shows
'zgrid passkey add TOKEN'. This command shows the portal's origin, the twin
and the passkey the token names, asks you to confirm (unless --yes), and
records the passkey as a device of your twin with a transaction signed by
--key (your root key or a device key). From then on the passkey signs you
in to that portal, and signs transactions there, until it is revoked.

Add only a token you made yourself, on a portal address you typed: a
passkey you add can act for your twin.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			twin, op, err := auth.DecodeRegistration(args[0])
			if err != nil {
				return err
			}
			fmt.Fprintf(g.stderr, "passkey %q for twin %d\n  portal origin: %s (relying party %s)\n  credential:    %s\n",
				op.Name, twin, op.Origin, op.RPID, base64.RawURLEncoding.EncodeToString(op.Credential))
			if !yes && !confirm(g, "Add this passkey to twin "+u64(twin)+"?") {
				return fmt.Errorf("not added")
			}
			return g.withSession(cmd, func(ctx context.Context, s *session) error {
				tw, err := s.client.TwinByKey(ctx, s.key.Public())
				if err != nil {
					return fmt.Errorf("find your twin: %w", err)
				}
				if tw.ID != twin {
					return fmt.Errorf("the token is for twin %d, but --key belongs to twin %d", twin, tw.ID)
				}
				res, err := s.submit(ctx, "passkey add", ledger.Op{TwinAddPasskey: op})
				if err != nil {
					return err
				}
				return printTx(g, res, fmt.Sprintf("passkey %q added to twin %d", op.Name, twin))
			})
		},
	}
	cmd.Flags().BoolVar(&yes, "yes", false, "do not ask for confirmation")
	return cmd
}

// confirm asks a yes/no question on stderr and reads the answer from stdin.
func confirm(g *globals, q string) bool {
	fmt.Fprintf(g.stderr, "%s [y/N] ", q)
	line, _ := bufio.NewReader(os.Stdin).ReadString('\n')
	a := strings.ToLower(strings.TrimSpace(line))
	return a == "y" || a == "yes"
}

func u64(v uint64) string { return fmt.Sprint(v) }
