package main

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/gateway"
	"github.com/zerogrid/zerogrid/internal/grid"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
	"github.com/zerogrid/zerogrid/internal/portal"
)

type portalFlags struct {
	ledger, trustRoot, dir, listen, origin string
	caDir, domain, certFile, keyFile       string
	hub                                    string
	node                                   uint64
}

func newPortalCmd(g *globals) *cobra.Command {
	f := &portalFlags{}
	cmd := &cobra.Command{
		Use:   "portal --ledger URL --dir DIR --listen ADDR",
		Short: "Run the web portal: passkey sign-in, deployments, devices; every change signed in the browser",
		Long: `Serves the portal over HTTPS on --listen for the origin --origin (the address
people type; passkeys are bound to it). The portal keeps no account and
holds no key: it verifies sign-ins against the twin's devices on the ledger
(read with proofs, verified from the trusted state in --dir) and relays
transactions that the person's passkey signs in the browser. Docs:
docs/access.md.

The certificate comes from --tls-cert/--tls-key, else from the local CA in
--ca-dir (zgrid up passes its gateway's, so one CA covers *.grid.localhost).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runPortal(cmd, g, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.ledger, "ledger", "http://127.0.0.1:26657", "ledger RPC URL")
	fl.StringVar(&f.trustRoot, "trust-root", "", "trust file to start verifying the ledger from, when DIR/ledger-trust.json does not exist yet")
	fl.StringVar(&f.dir, "dir", "", "state directory: trusted ledger state, and the local CA unless --ca-dir")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:8444", "HTTPS address, host:port")
	fl.StringVar(&f.origin, "origin", "", "the portal's origin, https://HOST[:PORT] (default https://portal.DOMAIN:PORT of --listen)")
	fl.StringVar(&f.domain, "domain", "grid.localhost", "domain of the local CA's certificates")
	fl.StringVar(&f.caDir, "ca-dir", "", "directory of the local CA (ca.crt, ca.key; default --dir)")
	fl.StringVar(&f.certFile, "tls-cert", "", "PEM certificate chain (instead of the local CA)")
	fl.StringVar(&f.keyFile, "tls-key", "", "PEM private key of --tls-cert")
	fl.Uint64Var(&f.node, "node", 0, "node a spec without `node:` deploys to (0: none)")
	fl.StringVar(&f.hub, "hub", "", "hub that resolves images named REPO:TAG in pasted specs (empty: specs must pin images by digest)")
	return cmd
}

func runPortal(cmd *cobra.Command, g *globals, f *portalFlags) error {
	if f.dir == "" {
		return errors.New("--dir DIR is required")
	}
	ctx := cmd.Context()
	log := g.logger().With("module", "portal")
	tlsConf, caPath, err := portalTLS(f)
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return fmt.Errorf("--listen %s: %w", f.listen, err)
	}
	defer ln.Close()
	origin := f.origin
	if origin == "" {
		origin = fmt.Sprintf("https://portal.%s:%d", f.domain, ln.Addr().(*net.TCPAddr).Port)
	}
	if u, err := url.Parse(origin); err != nil || u.Scheme != "https" {
		return fmt.Errorf("--origin %q: want https://HOST[:PORT]", origin)
	}
	opts, err := client.KeepTrust(filepath.Join(f.dir, "ledger-trust.json"), f.trustRoot, nil, "")
	if err != nil {
		return err
	}
	opts.Logger = log
	lc, err := dialLedger(ctx, f.ledger, opts)
	if err != nil {
		return fmt.Errorf("ledger %s: %w", f.ledger, err)
	}
	defer lc.Close()
	popts := portal.Options{Origin: origin, Ledger: lc, DefaultNode: f.node, Logger: log}
	if f.hub != "" {
		// Plain HTTP only to a hub on this machine (a local grid's), as zgrid does.
		h, err := (&grid.File{Hub: f.hub}).HubClient()
		if err != nil {
			return fmt.Errorf("--hub %s: %w", f.hub, err)
		}
		popts.ResolveImage = h.Pin
	}
	p, err := portal.New(popts)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: p, TLSConfig: tlsConf, ReadHeaderTimeout: 10 * time.Second, IdleTimeout: 2 * time.Minute}
	errc := make(chan error, 1)
	go func() { errc <- srv.ServeTLS(ln, "", "") }()
	out := cmd.OutOrStdout()
	fmt.Fprintf(out, "portal ready: %s on %s\n", origin, ln.Addr())
	if caPath != "" {
		fmt.Fprintf(out, "CA certificate: %s\n", caPath)
	}
	select {
	case <-ctx.Done():
	case err = <-errc:
		log.Error("portal server failed", "err", err)
	}
	sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	serr := srv.Shutdown(sctx)
	if errors.Is(err, http.ErrServerClosed) {
		err = nil
	}
	return errors.Join(err, serr)
}

func portalTLS(f *portalFlags) (*tls.Config, string, error) {
	conf := &tls.Config{MinVersion: tls.VersionTLS12}
	if f.certFile != "" || f.keyFile != "" {
		cert, err := tls.LoadX509KeyPair(f.certFile, f.keyFile)
		if err != nil {
			return nil, "", fmt.Errorf("--tls-cert/--tls-key: %w", err)
		}
		conf.Certificates = []tls.Certificate{cert}
		return conf, "", nil
	}
	dir := f.caDir
	if dir == "" {
		dir = f.dir
	}
	get, caPath, err := gateway.LocalCertificates(dir, f.domain)
	if err != nil {
		return nil, "", err
	}
	conf.GetCertificate = get
	return conf, caPath, nil
}
