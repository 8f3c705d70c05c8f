package main

import (
	"crypto/rand"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
)

func newTwinAddDeviceCmd(g *globals) *cobra.Command {
	var out, name string
	cmd := &cobra.Command{
		Use:   "add-device --out FILE --name NAME",
		Short: "Make a device key, certify it with your root key (--key) and add it to your twin",
		Long: `Makes a new device key, certifies it with the root key in --key, proves on
the ledger that the device holds it, and writes it to FILE (encrypted). Use
the device key day to day and keep the root key (and its 24 words) offline;
a lost device is revoked with 'zgrid twin revoke-key'.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if out == "" || name == "" {
				return fmt.Errorf("--out FILE and --name NAME are required")
			}
			if _, err := os.Stat(out); err == nil {
				return fmt.Errorf("%s already exists: remove it or choose another --out", out)
			}
			ctx, cancel := g.withTimeout(cmd.Context())
			defer cancel()
			s, err := g.session(ctx)
			if err != nil {
				return err
			}
			defer s.close()
			if s.key.Kind != identity.KindRoot {
				return fmt.Errorf("--key %s is a %s key: certifying a device needs the root key", g.keyPath, s.key.Kind)
			}
			tw, err := s.client.TwinByKey(ctx, s.key.Public())
			if err != nil {
				return fmt.Errorf("find your twin: %w (register it first: `zgrid twin register`)", err)
			}
			dev, err := identity.GenerateKey(rand.Reader)
			if err != nil {
				return err
			}
			cert, err := s.key.Key.CertifyDevice(identity.DeviceCert{Twin: tw.ID, Device: dev.Public(), Name: name, Created: time.Now().Unix()})
			if err != nil {
				return err
			}
			proof, err := identity.ProvePossession(dev, ledger.DeviceProof{Chain: s.client.Chain(), Twin: tw.ID, Device: dev.Public()})
			if err != nil {
				return err
			}
			kf, err := identity.NewKeyFile(identity.KindDevice, dev)
			if err != nil {
				return err
			}
			kf.Twin, kf.Cert = tw.ID, &cert
			pass, err := identity.Passphrase("New passphrase for "+out+": ", true, os.Stdin, g.stderr)
			if err != nil {
				return err
			}
			// Write first: a key on the ledger that no file holds would be useless.
			if err := identity.WriteKeyFile(out, kf, pass); err != nil {
				return err
			}
			res, err := s.submit(ctx, "add device key", ledger.Op{TwinAddKey: &ledger.TwinAddKey{Cert: cert, Proof: proof}})
			if err != nil {
				return fmt.Errorf("%w (the key file %s was written but is not on the ledger; remove it and retry)", err, out)
			}
			return g.print(txOut{ID: res.ID, Height: res.Height, Tx: fmt.Sprintf("%X", res.Hash), Name: dev.Public().String()},
				func(w io.Writer) { fmt.Fprintln(w, dev.Public()) })
		},
	}
	cmd.Flags().StringVar(&out, "out", "", "device key file to write (must not exist)")
	cmd.Flags().StringVar(&name, "name", "", "a label for the device, such as laptop")
	return cmd
}
