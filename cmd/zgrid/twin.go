package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
)

func newTwinCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "twin", Short: "Register and inspect your twin (your account on the ledger)"}
	cmd.AddCommand(newTwinRegisterCmd(g), newTwinShowCmd(g), newTwinAddDeviceCmd(g), newTwinRevokeCmd(g))
	return cmd
}

// session is a loaded key plus a ledger connection.
type session struct {
	key    *identity.KeyFile
	client *client.Client
	signer *client.Signer
}

func (g *globals) session(ctx context.Context) (*session, error) {
	kf, err := g.loadKey()
	if err != nil {
		return nil, err
	}
	c, err := g.dial(ctx)
	if err != nil {
		return nil, err
	}
	return &session{key: kf, client: c, signer: c.Signer(kf.Key)}, nil
}

func (s *session) close() { s.client.Close() }

// submit sends op and turns a refusal into an error that names the op.
func (s *session) submit(ctx context.Context, what string, op ledger.Op) (*client.Result, error) {
	res, err := s.signer.Submit(ctx, op)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", what, err)
	}
	return res, nil
}

type txOut struct {
	ID     uint64 `json:"id,omitempty"`
	Name   string `json:"name,omitempty"`
	Height int64  `json:"height"`
	Tx     string `json:"tx"`
}

func printTx(g *globals, res *client.Result, text string) error {
	return g.print(txOut{ID: res.ID, Name: res.Name, Height: res.Height, Tx: fmt.Sprintf("%X", res.Hash)},
		func(w io.Writer) { fmt.Fprintln(w, text) })
}

func newTwinRegisterCmd(g *globals) *cobra.Command {
	var name string
	cmd := &cobra.Command{
		Use:   "register",
		Short: "Register the key in --key as a new twin; prints the twin id",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, cancel := g.withTimeout(cmd.Context())
			defer cancel()
			s, err := g.session(ctx)
			if err != nil {
				return err
			}
			defer s.close()
			res, err := s.submit(ctx, "register twin", ledger.Op{TwinRegister: &ledger.TwinRegister{Name: name}})
			if ledger.CodeOf(err) == ledger.CodeConflict {
				return fmt.Errorf("%w\n(this key already has a twin: `zgrid twin show`)", err)
			}
			if err != nil {
				return err
			}
			// The id comes from the validator's commit notice: print it only
			// once the verified state agrees.
			a, err := s.client.Account(ctx, s.key.Public())
			if err != nil {
				return fmt.Errorf("twin registered, but reading it back with a proof failed: %w", err)
			}
			if a.Twin != res.ID {
				return fmt.Errorf("the validator announced twin %d, but the verified ledger says this key's twin is %d: the validator lies; use another (--ledger)", res.ID, a.Twin)
			}
			return printTx(g, res, strconv.FormatUint(res.ID, 10))
		},
	}
	cmd.Flags().StringVar(&name, "name", "", "display name (optional, public)")
	return cmd
}

type twinOut struct {
	ID      uint64             `json:"id"`
	Name    string             `json:"name,omitempty"`
	Root    identity.PublicKey `json:"root_key"`
	Seq     uint64             `json:"seq"`
	Created int64              `json:"created_height"`
	Devices []devOut           `json:"devices"`
}

type devOut struct {
	Key     string `json:"key"`
	Name    string `json:"name,omitempty"`
	Added   int64  `json:"added_height"`
	Revoked int64  `json:"revoked_height,omitempty"`
}

func newTwinShowCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "show [ID]",
		Short: "Show a twin: by id, or the one that holds --key",
		Args:  cobra.MaximumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx, cancel := g.withTimeout(cmd.Context())
			defer cancel()
			t, err := fetchTwin(ctx, g, args)
			if err != nil {
				return err
			}
			out := twinOut{ID: t.ID, Name: t.Name, Root: t.Root, Seq: t.Seq, Created: t.Created, Devices: []devOut{}}
			for _, k := range t.Keys {
				out.Devices = append(out.Devices, devOut{Key: k.Key.String(), Name: k.Name, Added: k.Added, Revoked: k.Revoked})
			}
			return g.print(out, func(w io.Writer) {
				fmt.Fprintf(w, "twin:     %d\nname:     %s\nroot key: %s\ncreated:  height %d\n", t.ID, t.Name, t.Root, t.Created)
				for _, d := range out.Devices {
					state := "active"
					if d.Revoked != 0 {
						state = fmt.Sprintf("revoked at height %d", d.Revoked)
					}
					fmt.Fprintf(w, "device:   %s %q %s\n", d.Key, d.Name, state)
				}
			})
		},
	}
}

func fetchTwin(ctx context.Context, g *globals, args []string) (*ledger.Twin, error) {
	var id uint64
	var kf *identity.KeyFile
	var err error
	if len(args) == 1 {
		if id, err = strconv.ParseUint(args[0], 10, 64); err != nil {
			return nil, fmt.Errorf("twin id %q: want a number", args[0])
		}
	} else if kf, err = g.loadKey(); err != nil {
		return nil, err
	}
	c, err := g.dial(ctx)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	if kf == nil {
		return c.Twin(ctx, id)
	}
	t, err := c.TwinByKey(ctx, kf.Public())
	if errors.Is(err, client.ErrNotFound) {
		return nil, fmt.Errorf("key %s has no twin on this ledger: run `zgrid --key %s twin register`", kf.PublicText(), g.keyPath)
	}
	return t, err
}

func newTwinRevokeCmd(g *globals) *cobra.Command {
	return &cobra.Command{
		Use:   "revoke-key KEY",
		Short: "Revoke a device key (zgpub1…) of your twin; it signs nothing from then on",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			k, err := identity.ParsePublicKey(args[0])
			if err != nil {
				return fmt.Errorf("key %q: %w", args[0], err)
			}
			return g.submitOp(cmd, "revoke key", ledger.Op{TwinRevokeKey: &ledger.TwinRevokeKey{Key: k}},
				func(*client.Result) string { return "revoked " + k.String() })
		},
	}
}
