package portal

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"

	"github.com/zerogrid/zerogrid/internal/auth"
	"github.com/zerogrid/zerogrid/internal/ledger"
)

// chrome is a headless Chromium with a virtual authenticator (CTAP2,
// platform, resident keys, user verification on), trusting the test
// server's certificate by its key so that the page is a secure context
// without certificate errors (WebAuthn refuses pages with them).
type chrome struct {
	t    *testing.T
	ctx  context.Context
	shot string
	n    int
}

func chromePath(t *testing.T) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium: install the Debian package chromium (.ci/run does)")
	return ""
}

func newChrome(t *testing.T, ts *httptest.Server) *chrome {
	path := chromePath(t)
	cert, err := x509.ParseCertificate(ts.TLS.Certificates[0].Certificate[0])
	if err != nil {
		t.Fatal(err)
	}
	spki := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests run as root in CI
		chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])),
		chromedp.Flag("host-resolver-rules", "MAP "+testRPID+" 127.0.0.1"),
		chromedp.WindowSize(1000, 900),
	)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(actx)
	t.Cleanup(func() { cancel(); cancelA() })
	if _, err := chromedp.Call(ctx, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		t.Fatalf("start chromium / enable WebAuthn: %v", err)
	}
	if _, err := chromedp.Call(ctx, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: "ctap2_1", Transport: webauthn.AuthenticatorTransportInternal,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true,
	}}); err != nil {
		t.Fatalf("virtual authenticator: %v", err)
	}
	c := &chrome{t: t, ctx: ctx, shot: os.Getenv("ZGRID_SCREENSHOTS")}
	if c.shot != "" {
		if err := os.MkdirAll(c.shot, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// do runs actions and fails the test with the page's status line.
func (c *chrome) do(what string, actions ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		page, _ := chromedp.Run(c.ctx, chromedp.Evaluate[string](`location.href + ": " + document.body.innerText`))
		c.t.Fatalf("%s: %v (page %q)", what, err, page)
	}
	c.screenshot(what)
}

// screenshot saves a PNG of the page when ZGRID_SCREENSHOTS names a directory.
func (c *chrome) screenshot(name string) {
	if c.shot == "" {
		return
	}
	c.n++
	png, err := chromedp.Run(c.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		c.t.Logf("screenshot %s: %v", name, err)
		return
	}
	file := filepath.Join(c.shot, fmt.Sprintf("%s-%02d-%s.png", c.t.Name(), c.n, strings.ReplaceAll(name, " ", "-")))
	if err := os.WriteFile(file, png, 0o644); err != nil {
		c.t.Error(err)
	}
}

func (c *chrome) text(sel string) string {
	c.t.Helper()
	s, err := chromedp.Run(c.ctx, chromedp.Text(chromedp.ID(sel), chromedp.NodeVisible))
	if err != nil {
		c.t.Fatalf("read #%s: %v", sel, err)
	}
	return s
}

// waitText waits until #id's text contains want.
func (c *chrome) waitText(id, want string) {
	c.t.Helper()
	js := fmt.Sprintf(`(document.getElementById(%q)||{}).textContent||""`, id)
	deadline := time.Now().Add(30 * time.Second)
	for {
		got, _ := chromedp.Run(c.ctx, chromedp.Evaluate[string](js))
		if strings.Contains(got, want) {
			return
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("#%s never showed %q (last %q)", id, want, got)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (c *chrome) location() string {
	loc, _ := chromedp.Run(c.ctx, chromedp.Evaluate[string](`location.pathname`))
	return loc
}

// TestBrowserPasskeyJourney is the whole journey in a real browser: a
// twin enrolled with the CLI registers a passkey made by Chrome's virtual
// authenticator, signs in with it, deploys a spec (the passkey signs the
// deployment and the transaction), sees it Ready, cancels it, revokes the
// passkey and is then refused.
func TestBrowserPasskeyJourney(t *testing.T) {
	g := newGrid(t)
	g.runNode()
	_, ts, origin := portalServer(t, g, Options{})
	c := newChrome(t, ts)

	c.do("register page", chromedp.Navigate(origin+"/register?twin="+u(g.twin)), chromedp.WaitVisible(chromedp.ID("register")))
	c.do("create passkey", chromedp.SetValue(chromedp.ID("name"), "chrome"), chromedp.Click(chromedp.ID("register")),
		chromedp.WaitVisible(chromedp.ID("register-command")))
	cmd := c.text("register-command")
	// What `zgrid passkey add TOKEN` does with the twin's CLI key.
	twin, op, err := auth.DecodeRegistration(strings.TrimPrefix(cmd, "zgrid passkey add "))
	if err != nil || twin != g.twin || op.Origin != origin {
		t.Fatalf("registration token %q: %v", cmd, err)
	}
	submit(t, g.c.Signer(g.root), ledger.Op{TwinAddPasskey: op})
	c.waitText("register-wait", "Registered")
	c.screenshot("registered")

	c.do("sign in", chromedp.Navigate(origin+"/signin"), chromedp.SendKeys(chromedp.ID("twin"), u(g.twin)),
		chromedp.Click(chromedp.ID("signin")), chromedp.WaitVisible(chromedp.ID("signout")))
	if loc := c.location(); loc != "/deployments" {
		t.Fatalf("after sign-in at %s", loc)
	}

	c.do("deploy form", chromedp.Navigate(origin+"/deploy"), chromedp.SetValue(chromedp.ID("spec"), testSpecYAML),
		chromedp.Click(chromedp.ID("review")), chromedp.WaitVisible(chromedp.ID("sign")))
	c.do("deploy signed", chromedp.Click(chromedp.ID("sign")), chromedp.WaitVisible(chromedp.ID("state")))
	loc := c.location()
	id := strings.TrimPrefix(loc, "/deployments/")
	if id == loc {
		t.Fatalf("after deploy at %s", loc)
	}
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(c.text("state"), "ready"); time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("deployment %s never showed ready: %q", id, c.text("state"))
		}
		c.do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("state")))
	}
	c.screenshot("ready")

	c.do("cancel review", chromedp.Click(chromedp.ID("cancel")), chromedp.WaitVisible(chromedp.ID("sign")))
	c.do("cancel signed", chromedp.Click(chromedp.ID("sign")), chromedp.WaitVisible(chromedp.ID("state")))
	c.waitText("state", "cancelled")

	c.do("devices", chromedp.Navigate(origin+"/devices"), chromedp.WaitVisible(chromedp.ID("revoke-self")))
	c.do("revoke review", chromedp.Click(chromedp.ID("revoke-self")), chromedp.WaitVisible(chromedp.ID("sign")))
	c.do("revoke signed", chromedp.Click(chromedp.ID("sign")), chromedp.WaitVisible(chromedp.ID("signin")))
	tw, err := g.c.Twin(context.Background(), g.twin)
	if err != nil || tw.ActiveKey(ledger.PasskeyHandle(g.twin, op.Credential)) {
		t.Fatalf("passkey still current after revoking it: %v", err)
	}
	c.do("sign in revoked", chromedp.SendKeys(chromedp.ID("twin"), u(g.twin)), chromedp.Click(chromedp.ID("signin")))
	c.waitText("status", "no current passkey")
	c.screenshot("refused")
}

// TestBrowserNumberMatching signs a browser in by number matching: the
// page shows two digits, the approver (what `zgrid login approve` runs,
// with the twin's CLI key) reads the request and signs the number.
func TestBrowserNumberMatching(t *testing.T) {
	g := newGrid(t)
	clk := &clock{}
	_, ts, origin := portalServer(t, g, Options{Now: clk.now})
	c := newChrome(t, ts)
	c.do("ask for approval", chromedp.Navigate(origin+"/signin"), chromedp.SendKeys(chromedp.ID("twin"), u(g.twin)),
		chromedp.Click(chromedp.ID("approve-request")), chromedp.WaitVisible(chromedp.ID("number")))
	var number int
	if _, err := fmt.Sscan(c.text("number"), &number); err != nil || number < 10 || number > 99 {
		t.Fatalf("the page shows %q: %v", c.text("number"), err)
	}
	ap := approver(ts, origin, g.root, g.twin, clk)
	reqs, err := ap.Pending(context.Background())
	if err != nil || len(reqs) != 1 || !strings.Contains(reqs[0].Agent, "Chrome") {
		t.Fatalf("pending: %+v %v", reqs, err)
	}
	if _, err := ap.Approve(context.Background(), reqs[0], uint8(number)); err != nil {
		t.Fatal(err)
	}
	c.do("approved", chromedp.WaitVisible(chromedp.ID("signout")))
	c.do("devices", chromedp.Navigate(origin+"/devices"), chromedp.WaitVisible(chromedp.ID("add-passkey")))
	if !strings.Contains(c.text("main"), "number-matching") {
		t.Fatal("the session list does not show how the session signed in")
	}
}
