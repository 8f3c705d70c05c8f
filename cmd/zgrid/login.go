package main

import (
	"bufio"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/auth"
)

func newLoginCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{Use: "login", Short: "Sign in to a portal from this device"}
	cmd.AddCommand(newLoginApproveCmd(g))
	return cmd
}

func newLoginApproveCmd(g *globals) *cobra.Command {
	var portal, caFile string
	cmd := &cobra.Command{
		Use:   "approve --portal URL",
		Short: "Approve a browser's sign-in request with --key, after checking the number it shows",
		Long: `Fetches your twin's pending sign-in requests from the portal (an outbound
call signed with --key: nothing listens on this machine), shows each one's
portal origin, browser address and time, and asks which number the browser
shows. The right number signs that browser in for a session bound to this
key; three wrong numbers cancel the request. Approve only a request you
made yourself, just now, on the portal address you typed.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if portal == "" {
				return errors.New("--portal URL is required (the address of the portal the browser shows, e.g. https://portal.grid.localhost:8443)")
			}
			hc, err := portalClient(caFile)
			if err != nil {
				return err
			}
			return g.withSession(cmd, func(ctx context.Context, s *session) error {
				tw, err := s.client.TwinByKey(ctx, s.key.Public())
				if err != nil {
					return fmt.Errorf("find your twin: %w", err)
				}
				ap := &auth.Approver{Portal: strings.TrimRight(portal, "/"), HTTP: hc, Key: s.key.Key, Twin: tw.ID}
				return approveAll(ctx, g, ap)
			})
		},
	}
	cmd.Flags().StringVar(&portal, "portal", os.Getenv("ZGRID_PORTAL"), "the portal's origin (env ZGRID_PORTAL)")
	cmd.Flags().StringVar(&caFile, "ca", "", "PEM file of the CA that signed the portal's certificate (zgrid up's: DIR/ca.pem); default the system's")
	return cmd
}

// portalClient trusts caFile (or the system's roots) and, as browsers and
// curl do, reaches every name under localhost on the loopback address.
func portalClient(caFile string) (*http.Client, error) {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	var d net.Dialer
	tr.DialContext = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, port, err := net.SplitHostPort(addr)
		if err == nil && (host == "localhost" || strings.HasSuffix(host, ".localhost")) {
			addr = net.JoinHostPort("127.0.0.1", port)
		}
		return d.DialContext(ctx, network, addr)
	}
	if caFile != "" {
		pem, err := os.ReadFile(caFile)
		if err != nil {
			return nil, err
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pem) {
			return nil, fmt.Errorf("%s holds no PEM certificate", caFile)
		}
		tr.TLSClientConfig.RootCAs = pool
	}
	return &http.Client{Transport: tr, Timeout: 30 * time.Second}, nil
}

// approveAll walks the pending requests and asks for each one's number.
func approveAll(ctx context.Context, g *globals, ap *auth.Approver) error {
	reqs, err := ap.Pending(ctx)
	if err != nil {
		return err
	}
	if len(reqs) == 0 {
		fmt.Fprintln(g.stdout, "no pending sign-in requests: ask for one in the browser first")
		return nil
	}
	in := bufio.NewReader(os.Stdin)
	for _, r := range reqs {
		fmt.Fprintf(g.stderr, "sign-in request for twin %d\n  portal:  %s\n  browser: %s (%s)\n  asked:   %s (expires %s)\n",
			r.Twin, r.Origin, r.Remote, r.Agent, r.Created.Local().Format(time.TimeOnly), time.Unix(r.Expires, 0).Local().Format(time.TimeOnly))
		for {
			fmt.Fprint(g.stderr, "Which number does the browser show? (empty: skip) ")
			line, _ := in.ReadString('\n')
			line = strings.TrimSpace(line)
			if line == "" {
				break
			}
			n, err := strconv.ParseUint(line, 10, 8)
			if err != nil || n < 10 || n > 99 {
				fmt.Fprintln(g.stderr, "two digits, as the browser shows them")
				continue
			}
			left, err := ap.Approve(ctx, r, uint8(n))
			if errors.Is(err, auth.ErrWrongNumber) {
				fmt.Fprintf(g.stderr, "that is not the number: %d attempts left\n", left)
				continue
			}
			if err != nil {
				return err
			}
			fmt.Fprintln(g.stdout, "approved: the browser is signed in")
			return nil
		}
	}
	return nil
}
