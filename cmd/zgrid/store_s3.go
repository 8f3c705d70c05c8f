package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/storage/catalog"
	"github.com/zerogrid/zerogrid/internal/storage/s3gw"
)

func (sc *storeCmd) s3Cmds() []*cobra.Command {
	return []*cobra.Command{sc.serveS3Cmd(), sc.s3KeysCmd()}
}

// credentials derives the S3 key pair of the mnemonic.
func (sc *storeCmd) credentials() (s3gw.Credentials, error) {
	m, err := catalog.Mnemonic(sc.getenv, os.Stdin, sc.g.stderr)
	if err != nil {
		return s3gw.Credentials{}, err
	}
	secret, err := catalog.StorageSecret(m)
	if err != nil {
		return s3gw.Credentials{}, err
	}
	defer clear(secret)
	return s3gw.DeriveCredentials(secret)
}

func (sc *storeCmd) s3KeysCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "s3-keys [--config FILE] [-o json]",
		Short: "Print the S3 access key pair that serve-s3 accepts for your mnemonic",
		Long: `s3-keys derives your S3 access key id and secret from your mnemonic (the
same mnemonic always gives the same pair) and prints them, for rclone,
restic or AWS CLI configurations. With -o json it prints
{"access_key_id": …, "secret_access_key": …}. The secret is a password: keep
it out of logs and shared files.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := sc.credentials()
			if err != nil {
				return err
			}
			return sc.g.print(c, func(w io.Writer) {
				fmt.Fprintf(w, "access_key_id:     %s\nsecret_access_key: %s\n", c.AccessKeyID, c.SecretAccessKey)
			})
		},
	}
}

func (sc *storeCmd) serveS3Cmd() *cobra.Command {
	var listen, certFile, keyFile, spool string
	cmd := &cobra.Command{
		Use:   "serve-s3 --config FILE --listen ADDR",
		Short: "Serve the store as an S3-compatible endpoint until interrupted",
		Long: `serve-s3 serves the store over the S3 protocol at ADDR, in the foreground,
until SIGINT or SIGTERM. Buckets are the store's top-level directories;
object KEY of bucket B is the file B/KEY.

Every request must be signed (AWS Signature Version 4) with the key pair
'zgrid store s3-keys' prints for the same mnemonic; requests signed with
any other key, with a wrong signature or more than 15 minutes off the
server's clock are refused, and so is a state-changing request replayed.

Without --tls-cert and --tls-key it serves plain HTTP, and then only on a
loopback address: signatures protect requests, not the data's
confidentiality on the wire.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if listen == "" {
				return errors.New("no address: pass --listen HOST:PORT (e.g. 127.0.0.1:9000)")
			}
			if (certFile == "") != (keyFile == "") {
				return errors.New("pass both --tls-cert and --tls-key, or neither")
			}
			if certFile == "" && !loopbackAddr(listen) {
				return fmt.Errorf("--listen %s is not a loopback address: plain HTTP would carry your data in clear; pass --tls-cert and --tls-key, or listen on 127.0.0.1", listen)
			}
			creds, err := sc.credentials()
			if err != nil {
				return err
			}
			s, done, err := sc.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer done()
			ln, err := net.Listen("tcp", listen)
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(sc.g.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			h, err := s3gw.New(cmd.Context(), s3gw.Config{Store: s, Users: []s3gw.Credentials{creds}, Logger: log, SpoolDir: spool})
			if err != nil {
				ln.Close()
				return err
			}
			srv := &http.Server{
				Handler:           h,
				ReadHeaderTimeout: 30 * time.Second,
				IdleTimeout:       2 * time.Minute,
				ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
			}
			scheme := "http"
			if certFile != "" {
				scheme = "https"
			}
			fmt.Fprintf(sc.g.stdout, "serving S3 at %s://%s (access key id %s)\n", scheme, ln.Addr(), creds.AccessKeyID)
			errc := make(chan error, 1)
			go func() {
				if certFile != "" {
					errc <- srv.ServeTLS(ln, certFile, keyFile)
				} else {
					errc <- srv.Serve(ln)
				}
			}()
			select {
			case err := <-errc:
				return err
			case <-cmd.Context().Done():
			}
			ctx, cancel := context.WithTimeout(context.WithoutCancel(cmd.Context()), 30*time.Second)
			defer cancel()
			return srv.Shutdown(ctx)
		},
	}
	cmd.Flags().StringVar(&listen, "listen", "", "address to serve on, HOST:PORT")
	cmd.Flags().StringVar(&certFile, "tls-cert", "", "TLS certificate (PEM) to serve HTTPS")
	cmd.Flags().StringVar(&keyFile, "tls-key", "", "TLS private key (PEM) of --tls-cert")
	cmd.Flags().StringVar(&spool, "spool-dir", "", "directory for the parts of multipart uploads until they complete (default: a temporary directory)")
	return cmd
}

// loopbackAddr reports whether HOST:PORT names a loopback address.
func loopbackAddr(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
