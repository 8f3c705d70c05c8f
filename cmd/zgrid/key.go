package main

import (
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/identity"
)

func newKeyCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "key", Short: "Create, recover and show key files"}
	cmd.AddCommand(newKeyNewCmd(g), newKeyRecoverCmd(g), newKeyShowCmd(g))
	return cmd
}

type keyInfo struct {
	Kind    string `json:"kind"`
	Public  string `json:"public_key"`
	Seal    string `json:"seal_key,omitempty"`
	Twin    uint64 `json:"twin,omitempty"`
	File    string `json:"file"`
	Created string `json:"created,omitempty"`
}

func newKeyNewCmd(g *globals) *cobra.Command {
	var out, kind string
	var showMnemonic bool
	cmd := &cobra.Command{
		Use:   "new --out FILE",
		Short: "Make a new key and write it to an encrypted key file",
		Long: `Makes a new key and writes it, encrypted under a passphrase, to FILE
(mode 0600). Prints the public key.

A root key (the default) comes from a new 24-word mnemonic: write the words
down, they are the only way to recover the key. They are shown on stderr
(not stdout) so that scripts capturing the public key do not record them;
--show-mnemonic=false hides them (they stay in the key file: see
'zgrid key show --mnemonic').

--kind node makes a random key for a node (signing, and sealing of secrets).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("--out FILE is required: where to write the key file")
			}
			if _, err := os.Stat(out); err == nil {
				return fmt.Errorf("%s already exists: remove it or choose another --out", out)
			}
			kf, err := newKeyFile(kind)
			if err != nil {
				return err
			}
			pass, err := identity.Passphrase("New passphrase for "+out+": ", true, os.Stdin, g.stderr)
			if err != nil {
				return err
			}
			if err := identity.WriteKeyFile(out, kf, pass); err != nil {
				return err
			}
			if kf.Kind == identity.KindRoot && showMnemonic {
				fmt.Fprintf(g.stderr, "Your recovery words (write them down, keep them offline):\n\n  %s\n\n", kf.Mnemonic())
			}
			return g.print(describeKey(kf, out), func(w io.Writer) { fmt.Fprintln(w, kf.PublicText()) })
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "key file to write (must not exist)")
	cmd.Flags().StringVar(&kind, "kind", "root", "root (from a new mnemonic) or node")
	cmd.Flags().BoolVar(&showMnemonic, "show-mnemonic", true, "print the recovery words on stderr")
	return cmd
}

func newKeyFile(kind string) (*identity.KeyFile, error) {
	switch kind {
	case "root":
		m, err := identity.NewMnemonic(rand.Reader)
		if err != nil {
			return nil, err
		}
		return identity.NewRootKeyFile(m)
	case "node":
		k, err := identity.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		return identity.NewKeyFile(identity.KindNode, k)
	}
	return nil, fmt.Errorf("--kind %q: want root or node", kind)
}

func describeKey(kf *identity.KeyFile, path string) keyInfo {
	ki := keyInfo{Kind: string(kf.Kind), Public: kf.PublicText(), Twin: kf.Twin, File: path}
	if !kf.Created.IsZero() {
		ki.Created = kf.Created.UTC().Format("2006-01-02T15:04:05Z")
	}
	if sk, err := kf.SealKey(); err == nil && !kf.Kind.IsRelease() {
		ki.Seal = sk.Public().String()
	}
	return ki
}

func newKeyRecoverCmd(g *globals) *cobra.Command {
	var out string
	cmd := &cobra.Command{
		Use:   "recover --out FILE",
		Short: "Rebuild a root key file from its 24 recovery words",
		Long: `Rebuilds a root key file from its 24-word mnemonic, read from
ZGRID_MNEMONIC when set, else from a prompt.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" {
				return fmt.Errorf("--out FILE is required")
			}
			m := os.Getenv("ZGRID_MNEMONIC")
			if m == "" {
				b, err := identity.Passphrase("Recovery words: ", false, os.Stdin, g.stderr)
				if err != nil {
					return fmt.Errorf("%w (or set ZGRID_MNEMONIC)", err)
				}
				m = string(b)
			}
			m = strings.Join(strings.Fields(m), " ")
			if err := identity.ValidateMnemonic(m); err != nil {
				return err
			}
			kf, err := identity.NewRootKeyFile(m)
			if err != nil {
				return err
			}
			return g.writeNewKey(out, kf)
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "key file to write (must not exist)")
	return cmd
}

// writeNewKey asks for a new passphrase (twice), writes kf to out under
// it and prints the public key.
func (g *globals) writeNewKey(out string, kf *identity.KeyFile) error {
	pass, err := identity.Passphrase("New passphrase for "+out+": ", true, os.Stdin, g.stderr)
	if err != nil {
		return err
	}
	if err := identity.WriteKeyFile(out, kf, pass); err != nil {
		return err
	}
	return g.print(describeKey(kf, out), func(w io.Writer) { fmt.Fprintln(w, kf.PublicText()) })
}

func newKeyShowCmd(g *globals) *cobra.Command {
	var mnemonic bool
	cmd := &cobra.Command{
		Use:   "show [--key FILE]",
		Short: "Show a key file's public key, kind and twin",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			kf, err := g.loadKey()
			if err != nil {
				return err
			}
			if mnemonic {
				if kf.Mnemonic() == "" {
					return fmt.Errorf("%s is a %s key: it has no recovery words", g.keyPath, kf.Kind)
				}
				fmt.Fprintln(g.stdout, kf.Mnemonic())
				return nil
			}
			ki := describeKey(kf, g.keyPath)
			return g.print(ki, func(w io.Writer) {
				fmt.Fprintf(w, "kind:    %s\npublic:  %s\n", ki.Kind, ki.Public)
				if ki.Seal != "" {
					fmt.Fprintf(w, "seal:    %.40s…\n", ki.Seal)
				}
			})
		},
	}
	cmd.Flags().BoolVar(&mnemonic, "mnemonic", false, "print the recovery words of a root key")
	return cmd
}
