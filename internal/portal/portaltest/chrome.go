// Package portaltest drives the portal in headless Chromium with a
// virtual WebAuthn authenticator, for the portal's own tests and for tests
// of a whole grid (zgrid up) that use the portal.
package portaltest

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
)

// Chrome is a headless Chromium with a virtual authenticator (CTAP2,
// platform, resident keys, user verification on and succeeding). It trusts
// the portal's certificate by its public key, so that the page is a secure
// context without certificate errors (WebAuthn refuses pages with them).
// With ZGRID_SCREENSHOTS=DIR every Do saves a PNG of the page there.
type Chrome struct {
	t    testing.TB
	ctx  context.Context
	shot string
	n    int
}

// Path finds Chromium, or skips the test saying what to install.
func Path(t testing.TB) string {
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	t.Skip("no Chromium: install the Debian package chromium (.ci/run does)")
	return ""
}

// New starts Chromium for the portal at host (resolved to 127.0.0.1),
// trusting the leaf certificate cert; it stops when the test ends.
func New(t testing.TB, host string, cert *x509.Certificate) *Chrome {
	path := Path(t)
	spki := sha256.Sum256(cert.RawSubjectPublicKeyInfo)
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(path),
		chromedp.NoSandbox, // tests run as root in CI
		chromedp.Flag("ignore-certificate-errors-spki-list", base64.StdEncoding.EncodeToString(spki[:])),
		chromedp.Flag("host-resolver-rules", "MAP "+host+" 127.0.0.1"),
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
	c := &Chrome{t: t, ctx: ctx, shot: os.Getenv("ZGRID_SCREENSHOTS")}
	if c.shot != "" {
		if err := os.MkdirAll(c.shot, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	return c
}

// Do runs actions (20 s at most) and fails the test with the page's text;
// then it saves a screenshot named what.
func (c *Chrome) Do(what string, actions ...chromedp.Action[chromedp.Void]) {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		page, _ := chromedp.Run(c.ctx, chromedp.Evaluate[string](`location.href + ": " + document.body.innerText`))
		c.t.Fatalf("%s: %v (page %q)", what, err, page)
	}
	c.Screenshot(what)
}

// Screenshot saves a PNG of the page when ZGRID_SCREENSHOTS names a directory.
func (c *Chrome) Screenshot(name string) {
	if c.shot == "" {
		return
	}
	c.n++
	png, err := chromedp.Run(c.ctx, chromedp.FullScreenshot(100))
	if err != nil {
		c.t.Logf("screenshot %s: %v", name, err)
		return
	}
	file := filepath.Join(c.shot, fmt.Sprintf("%s-%02d-%s.png", strings.ReplaceAll(c.t.Name(), "/", "_"), c.n, strings.ReplaceAll(name, " ", "-")))
	if err := os.WriteFile(file, png, 0o644); err != nil {
		c.t.Error(err)
	}
}

// Text is the visible text of the element with id.
func (c *Chrome) Text(id string) string {
	c.t.Helper()
	ctx, cancel := context.WithTimeout(c.ctx, 20*time.Second)
	defer cancel()
	s, err := chromedp.Run(ctx, chromedp.Text(chromedp.ID(id), chromedp.NodeVisible))
	if err != nil {
		c.t.Fatalf("read #%s: %v", id, err)
	}
	return s
}

// WaitText waits (up to d) until the element with id contains want.
func (c *Chrome) WaitText(id, want string, d time.Duration) {
	c.t.Helper()
	js := fmt.Sprintf(`(document.getElementById(%q)||{}).textContent||""`, id)
	deadline := time.Now().Add(d)
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

// Path is the page's location path.
func (c *Chrome) Path() string {
	loc, _ := chromedp.Run(c.ctx, chromedp.Evaluate[string](`location.pathname`))
	return loc
}

// Journey is the passkey journey on a portal at origin: register a
// passkey for twin (add signs its token with a key of the twin, as `zgrid
// passkey add` does), sign in, deploy spec, wait until the deployment page
// shows ready (reloading, up to ready), and cancel it. It returns the
// deployment's id as the page shows it.
func (c *Chrome) Journey(origin string, twin uint64, add func(token string), spec string, ready time.Duration) string {
	c.t.Helper()
	c.Do("register page", chromedp.Navigate(fmt.Sprintf("%s/register?twin=%d", origin, twin)), chromedp.WaitVisible(chromedp.ID("register")))
	c.Do("create passkey", chromedp.SetValue(chromedp.ID("name"), "chrome"), chromedp.Click(chromedp.ID("register")),
		chromedp.WaitVisible(chromedp.ID("register-command")))
	add(strings.TrimPrefix(c.Text("register-command"), "zgrid passkey add "))
	c.WaitText("register-wait", "Registered", 30*time.Second)
	c.Screenshot("registered")

	c.Do("sign in", chromedp.Navigate(origin+"/signin"), chromedp.SendKeys(chromedp.ID("twin"), fmt.Sprint(twin)),
		chromedp.Click(chromedp.ID("signin")), chromedp.WaitVisible(chromedp.ID("signout")))
	if p := c.Path(); p != "/deployments" {
		c.t.Fatalf("after sign-in at %s", p)
	}
	c.Do("deploy form", chromedp.Navigate(origin+"/deploy"), chromedp.SetValue(chromedp.ID("spec"), spec),
		chromedp.Click(chromedp.ID("review")), chromedp.WaitVisible(chromedp.ID("sign")))
	c.Do("deploy signed", chromedp.Click(chromedp.ID("sign")), chromedp.WaitVisible(chromedp.ID("state")))
	p := c.Path()
	id := strings.TrimPrefix(p, "/deployments/")
	if id == p {
		c.t.Fatalf("after deploy at %s", p)
	}
	for deadline := time.Now().Add(ready); !strings.Contains(c.Text("state"), "ready"); time.Sleep(500 * time.Millisecond) {
		if time.Now().After(deadline) {
			c.t.Fatalf("deployment %s never showed ready: %q", id, c.Text("state"))
		}
		c.Do("reload", chromedp.Reload(), chromedp.WaitVisible(chromedp.ID("state")))
	}
	c.Screenshot("ready")
	c.Do("cancel review", chromedp.Click(chromedp.ID("cancel")), chromedp.WaitVisible(chromedp.ID("sign")))
	c.Do("cancel signed", chromedp.Click(chromedp.ID("sign")), chromedp.WaitVisible(chromedp.ID("state")))
	c.WaitText("state", "cancelled", 20*time.Second)
	return id
}
