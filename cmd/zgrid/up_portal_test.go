package main

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/grid"
	"github.com/zerogrid/zerogrid/internal/portal/portaltest"
)

// upPortalJourney runs the passkey journey in headless Chromium on the
// portal of a running `zgrid up`: the grid's twin registers a passkey
// (signed with `zgrid passkey add` and the grid's key), signs in, deploys
// examples/hello.yaml (the portal resolves hello:latest in the grid's
// hub), sees a real node report it Ready, and cancels it.
func upPortalJourney(t *testing.T, gf *grid.File) {
	portaltest.Path(t)
	if gf.Portal == nil {
		t.Fatal("grid.json has no portal")
	}
	pem, err := os.ReadFile(gf.Portal.CA)
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(pem)
	conn, err := tls.Dial("tcp", grid.PortalAddr, &tls.Config{ServerName: "portal." + grid.GatewayDomain, RootCAs: pool})
	if err != nil {
		t.Fatalf("the portal's certificate does not verify with the grid's CA: %v", err)
	}
	leaf := conn.ConnectionState().PeerCertificates[0]
	conn.Close()

	out, _, err := run(t, "--ledger", gf.Ledger, "--trust", gf.Trust, "--key", gf.UserKey, "twin", "show", "-o", "json")
	var tw struct {
		ID uint64 `json:"id"`
	}
	if err != nil || json.Unmarshal([]byte(out), &tw) != nil {
		t.Fatalf("twin show: %q %v", out, err)
	}
	spec, err := os.ReadFile("../../examples/hello.yaml")
	if err != nil {
		t.Fatal(err)
	}
	c := portaltest.New(t, "portal."+grid.GatewayDomain, leaf)
	c.Journey(strings.TrimSuffix(gf.Portal.URL, "/"), tw.ID, func(token string) {
		if _, stderr, err := run(t, "--ledger", gf.Ledger, "--trust", gf.Trust, "--key", gf.UserKey, "passkey", "add", "--yes", token); err != nil {
			t.Fatalf("zgrid passkey add: %v\n%s", err, stderr)
		}
	}, string(spec), 90*time.Second)
}
