package portal

import (
	"context"
	"crypto/x509"
	"fmt"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/zerogrid/zerogrid/internal/auth"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/portal/portaltest"
)

func newChrome(t *testing.T, ts *httptest.Server) *portaltest.Chrome {
	portaltest.Path(t)
	cert, err := x509.ParseCertificate(ts.TLS.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	return portaltest.New(t, testRPID, cert)
}

// TestBrowserPasskeyJourney is the whole journey in a real browser on the
// in-process ledger with a fake node agent (see grid): a twin enrolled with
// the CLI key registers a passkey made by Chrome's virtual authenticator,
// signs in with it, deploys a spec (the passkey signs the deployment and
// the transaction), sees it Ready, cancels it, revokes the passkey and is
// then refused. cmd/zgrid's TestUpPortalJourney runs the same journey on
// `zgrid up` with real nodes.
func TestBrowserPasskeyJourney(t *testing.T) {
	g := newGrid(t)
	g.runNode()
	_, ts, origin := portalServer(t, g, Options{})
	c := newChrome(t, ts)
	var cred []byte
	c.Journey(origin, g.twin, func(token string) {
		// What `zgrid passkey add TOKEN` does with the twin's CLI key.
		twin, op, err := auth.DecodeRegistration(token)
		if err != nil || twin != g.twin || op.Origin != origin {
			t.Fatalf("registration token %q: %v", token, err)
		}
		cred = op.Credential
		submit(t, g.c.Signer(g.root), ledger.Op{TwinAddPasskey: op})
	}, testSpecYAML, 20*time.Second)

	c.Do("devices", chromedp.Navigate(origin+"/devices"), chromedp.WaitVisible(chromedp.ID("revoke-self")))
	c.Do("revoke review", chromedp.Click(chromedp.ID("revoke-self")), chromedp.WaitVisible(chromedp.ID("sign")))
	c.Do("revoke signed", chromedp.Click(chromedp.ID("sign")), chromedp.WaitVisible(chromedp.ID("signin")))
	tw, err := g.c.Twin(context.Background(), g.twin)
	if err != nil || tw.ActiveKey(ledger.PasskeyHandle(g.twin, cred)) {
		t.Fatalf("passkey still current after revoking it: %v", err)
	}
	c.Do("sign in revoked", chromedp.SendKeys(chromedp.ID("twin"), u(g.twin)), chromedp.Click(chromedp.ID("signin")))
	c.WaitText("status", "no current passkey", 20*time.Second)
	c.Screenshot("refused")
}

// TestBrowserNumberMatching signs a browser in by number matching: the
// page shows two digits, the approver (what `zgrid login approve` runs,
// with the twin's CLI key) reads the request and signs the number.
func TestBrowserNumberMatching(t *testing.T) {
	g := newGrid(t)
	clk := &clock{}
	_, ts, origin := portalServer(t, g, Options{Now: clk.now})
	c := newChrome(t, ts)
	c.Do("ask for approval", chromedp.Navigate(origin+"/signin"), chromedp.SendKeys(chromedp.ID("twin"), u(g.twin)),
		chromedp.Click(chromedp.ID("approve-request")), chromedp.WaitVisible(chromedp.ID("number")))
	var number int
	if _, err := fmt.Sscan(c.Text("number"), &number); err != nil || number < 10 || number > 99 {
		t.Fatalf("the page shows %q: %v", c.Text("number"), err)
	}
	ap := approver(ts, origin, g.root, g.twin, clk)
	reqs, err := ap.Pending(context.Background())
	if err != nil || len(reqs) != 1 || !strings.Contains(reqs[0].Agent, "Chrome") {
		t.Fatalf("pending: %+v %v", reqs, err)
	}
	if _, err := ap.Approve(context.Background(), reqs[0], uint8(number)); err != nil {
		t.Fatal(err)
	}
	c.Do("approved", chromedp.WaitVisible(chromedp.ID("signout")))
	c.Do("devices", chromedp.Navigate(origin+"/devices"), chromedp.WaitVisible(chromedp.ID("add-passkey")))
	if !strings.Contains(c.Text("main"), "number-matching") {
		t.Fatal("the session list does not show how the session signed in")
	}
}
