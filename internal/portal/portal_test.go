package portal

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/passkeytest"
)

var (
	csrfRe = regexp.MustCompile(`data-csrf="([^"]*)"`)
	flowRe = regexp.MustCompile(`data-flow="([^"]+)"`)
)

func (b *browser) csrf() string {
	b.t.Helper()
	_, page := b.get("/deployments")
	m := csrfRe.FindStringSubmatch(page)
	if m == nil || m[1] == "" {
		b.t.Fatalf("no CSRF token on the page: %.300s", page)
	}
	return m[1]
}

// signFlow answers every challenge of a signing flow with a and returns
// the final status and answer.
func (b *browser) signFlow(a *passkeytest.Authenticator, flow, csrf string) (int, map[string]any) {
	b.t.Helper()
	code, step := b.postJSON("/api/sign/start", map[string]string{"flow": flow}, csrf)
	for code == http.StatusOK && step["publicKey"] != nil {
		code, step = b.postJSON("/api/sign/step", map[string]any{"flow": step["flow"], "credential": answer(b.t, a, step["publicKey"].(map[string]any), passkeytest.Options{})}, csrf)
	}
	return code, step
}

const testSpecYAML = `version: 1
workloads:
  - name: web
    type: container
    image: hub.example.net/hello@sha256:0000000000000000000000000000000000000000000000000000000000000000
    cpu: 250m
    memory: 64MiB
    mounts:
      - volume: data
        path: /data
  - name: data
    type: volume
    size: 16MiB
`

func (g *grid) waitState(id uint64, state string) *ledger.Contract {
	g.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := g.c.Contract(context.Background(), id)
		if err == nil && c.State == state {
			return c
		}
		if time.Now().After(deadline) {
			g.t.Fatalf("contract %d never reached %s (last %+v, %v)", id, state, c, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func TestPasskeyDeployAndCancel(t *testing.T) {
	g := newGrid(t)
	g.runNode()
	_, ts, origin := portalServer(t, g, Options{})
	a := g.addPasskey(g.root, g.twin, origin)
	b := newBrowser(t, ts, origin)
	if code, m := b.signIn(a, g.twin, passkeytest.Options{}); code != http.StatusOK {
		t.Fatalf("sign-in refused: %d %v", code, m)
	}
	csrf := b.csrf()
	// A spec with an error is answered with its line.
	code, page := b.postForm("/deploy", url.Values{"csrf": {csrf}, "spec": {strings.Replace(testSpecYAML, "cpu: 250m", "cpu: lots", 1)}})
	if code != http.StatusUnprocessableEntity || !strings.Contains(page, "spec.yaml:6:10: workloads[0].cpu") {
		t.Fatalf("bad spec: %d, want the file:line in %s", code, page[strings.Index(page, "<main"):])
	}
	code, page = b.postForm("/deploy", url.Values{"csrf": {csrf}, "spec": {testSpecYAML}})
	m := flowRe.FindStringSubmatch(page)
	if code != http.StatusOK || m == nil {
		t.Fatalf("review: %d %.400s", code, page)
	}
	code, done := b.signFlow(a, m[1], csrf)
	if code != http.StatusOK || !strings.HasPrefix(done["redirect"].(string), "/deployments/") {
		t.Fatalf("deploy: %d %v", code, done)
	}
	cs, err := g.c.ContractsByTwin(context.Background(), g.twin)
	if err != nil || len(cs) != 1 {
		t.Fatalf("contracts %v %v", cs, err)
	}
	c := g.waitState(cs[0].ID, ledger.StateReady)
	tw, _ := g.c.Twin(context.Background(), g.twin)
	if !tw.ActiveKey(c.SpecSig.Key) || c.SpecSig.WebAuthn == nil {
		t.Fatal("the spec is not signed by the passkey")
	}
	if _, page := b.get("/deployments/" + u(c.ID)); !strings.Contains(page, "Ready") {
		t.Fatalf("deployment page does not show Ready: %.500s", page)
	}
	// Update: generation 2, signed by the passkey; the node stays.
	code, page = b.postForm("/deployments/"+u(c.ID)+"/update", url.Values{"csrf": {csrf}, "spec": {strings.Replace(testSpecYAML, "cpu: 250m", "cpu: 500m", 1)}})
	if m = flowRe.FindStringSubmatch(page); code != http.StatusOK || m == nil {
		t.Fatalf("update review: %d %.300s", code, page)
	}
	if code, done = b.signFlow(a, m[1], csrf); code != http.StatusOK {
		t.Fatalf("update: %d %v", code, done)
	}
	if c2, err := g.c.Contract(context.Background(), c.ID); err != nil || c2.Generation != 2 || c2.SpecSig.WebAuthn == nil {
		t.Fatalf("after the update: %+v %v", c2, err)
	}
	code, page = b.postForm("/deployments/"+u(c.ID)+"/cancel", url.Values{"csrf": {csrf}})
	if m = flowRe.FindStringSubmatch(page); code != http.StatusOK || m == nil {
		t.Fatalf("cancel review: %d %.300s", code, page)
	}
	if code, done = b.signFlow(a, m[1], csrf); code != http.StatusOK {
		t.Fatalf("cancel: %d %v", code, done)
	}
	g.waitState(c.ID, ledger.StateCancelled)
}

func TestSignInRefusals(t *testing.T) {
	g := newGrid(t)
	_, ts, origin := portalServer(t, g, Options{})
	a := g.addPasskey(g.root, g.twin, origin)

	t.Run("ErrPhishingOrigin", func(t *testing.T) {
		b := newBrowser(t, ts, origin)
		code, m := b.signIn(a, g.twin, passkeytest.Options{Origin: "https://portal.grid.localhost.evil.example"})
		if code != http.StatusUnauthorized || !strings.Contains(m["error"].(string), "origin") {
			t.Fatalf("assertion from another origin: %d %v", code, m)
		}
	})
	t.Run("ErrNoUserVerification", func(t *testing.T) {
		b := newBrowser(t, ts, origin)
		if code, m := b.signIn(a, g.twin, passkeytest.Options{NoUV: true}); code != http.StatusUnauthorized {
			t.Fatalf("assertion without UV: %d %v", code, m)
		}
	})
	t.Run("ErrReplay", func(t *testing.T) {
		b := newBrowser(t, ts, origin)
		_, begin := b.postJSON("/api/signin/begin", map[string]string{"twin": u(g.twin)}, "")
		cred := answer(t, a, begin["publicKey"].(map[string]any), passkeytest.Options{})
		if code, m := b.postJSON("/api/signin/finish", map[string]any{"flow": begin["flow"], "credential": cred}, ""); code != http.StatusOK {
			t.Fatalf("first use: %d %v", code, m)
		}
		if code, _ := b.postJSON("/api/signin/finish", map[string]any{"flow": begin["flow"], "credential": cred}, ""); code == http.StatusOK {
			t.Fatal("a used challenge signed in again")
		}
		_, begin2 := b.postJSON("/api/signin/begin", map[string]string{"twin": u(g.twin)}, "")
		if code, _ := b.postJSON("/api/signin/finish", map[string]any{"flow": begin2["flow"], "credential": cred}, ""); code != http.StatusUnauthorized {
			t.Fatalf("an old assertion answered a new challenge: %d", code)
		}
	})
	t.Run("ErrCrossOriginPost", func(t *testing.T) {
		b := newBrowser(t, ts, "https://evil.example")
		if code, _ := b.postJSON("/api/signin/begin", map[string]string{"twin": u(g.twin)}, ""); code != http.StatusForbidden {
			t.Fatalf("cross-origin POST: %d", code)
		}
	})
	t.Run("ErrRevoked", func(t *testing.T) {
		b := newBrowser(t, ts, origin)
		if code, m := b.signIn(a, g.twin, passkeytest.Options{}); code != http.StatusOK {
			t.Fatalf("sign-in: %d %v", code, m)
		}
		if code, _ := b.get("/deployments"); code != http.StatusOK {
			t.Fatalf("deployments: %d", code)
		}
		submit(t, g.c.Signer(g.root), ledger.Op{TwinRevokeKey: &ledger.TwinRevokeKey{Key: ledger.PasskeyHandle(g.twin, a.Credential)}})
		if code, _ := b.get("/deployments"); code != http.StatusUnauthorized {
			t.Fatalf("a session of a revoked passkey still reads: %d", code)
		}
		if code, m := newBrowser(t, ts, origin).signIn(a, g.twin, passkeytest.Options{}); code == http.StatusOK {
			t.Fatalf("a revoked passkey signed in: %v", m)
		}
	})
}

func TestSessionBoundaries(t *testing.T) {
	g := newGrid(t)
	g.runNode()
	_, ts, origin := portalServer(t, g, Options{})
	a := g.addPasskey(g.root, g.twin, origin)
	alice := newBrowser(t, ts, origin)
	if code, m := alice.signIn(a, g.twin, passkeytest.Options{}); code != http.StatusOK {
		t.Fatalf("sign-in: %d %v", code, m)
	}
	csrf := alice.csrf()
	_, page := alice.postForm("/deploy", url.Values{"csrf": {csrf}, "spec": {testSpecYAML}})
	if code, m := alice.signFlow(a, flowRe.FindStringSubmatch(page)[1], csrf); code != http.StatusOK {
		t.Fatalf("deploy: %d %v", code, m)
	}
	cs, _ := g.c.ContractsByTwin(context.Background(), g.twin)
	id := u(cs[0].ID)

	bobKey := newKey(t)
	bobTwin := submit(t, g.c.Signer(bobKey), ledger.Op{TwinRegister: &ledger.TwinRegister{Name: "bob"}}).ID
	bobPK := g.addPasskey(bobKey, bobTwin, origin)
	bob := newBrowser(t, ts, origin)
	if code, m := bob.signIn(bobPK, bobTwin, passkeytest.Options{}); code != http.StatusOK {
		t.Fatalf("bob's sign-in: %d %v", code, m)
	}
	bobCSRF := bob.csrf()

	t.Run("ErrOtherTwinsDeployment", func(t *testing.T) {
		if code, _ := bob.get("/deployments/" + id); code != http.StatusNotFound {
			t.Fatalf("bob reads alice's deployment: %d", code)
		}
		if _, page := bob.get("/deployments"); strings.Contains(page, `href="/deployments/`+id+`"`) {
			t.Fatal("bob's list shows alice's deployment")
		}
		if code, _ := bob.postForm("/deployments/"+id+"/cancel", url.Values{"csrf": {bobCSRF}}); code != http.StatusNotFound {
			t.Fatalf("bob cancels alice's deployment: %d", code)
		}
	})
	t.Run("ErrCSRF", func(t *testing.T) {
		if code, _ := alice.postForm("/deployments/"+id+"/cancel", url.Values{}); code != http.StatusForbidden {
			t.Fatalf("POST without CSRF token: %d", code)
		}
		if code, _ := alice.postForm("/deployments/"+id+"/cancel", url.Values{"csrf": {bobCSRF}}); code != http.StatusForbidden {
			t.Fatalf("POST with another session's CSRF token: %d", code)
		}
		if code, _ := alice.postJSON("/api/sign/start", map[string]string{"flow": "x"}, ""); code != http.StatusForbidden {
			t.Fatalf("API POST without CSRF header: %d", code)
		}
	})
	t.Run("ErrOtherSessionsFlow", func(t *testing.T) {
		_, page := alice.postForm("/deployments/"+id+"/cancel", url.Values{"csrf": {csrf}})
		flow := flowRe.FindStringSubmatch(page)[1]
		if code, _ := bob.postJSON("/api/sign/start", map[string]string{"flow": flow}, bobCSRF); code == http.StatusOK {
			t.Fatal("bob continues alice's signing flow")
		}
	})
	t.Run("SignOutAndRevokeSession", func(t *testing.T) {
		other := newBrowser(t, ts, origin)
		other.signIn(a, g.twin, passkeytest.Options{})
		sessions := alice.serverSessions(g.twin)
		if len(sessions) != 2 {
			t.Fatalf("alice has %d sessions, want 2", len(sessions))
		}
		if code, _ := alice.postForm("/sessions/revoke", url.Values{"csrf": {csrf}, "id": {sessions[1]}}); code != http.StatusSeeOther {
			t.Fatalf("revoke session: %d", code)
		}
		if code, _ := other.get("/deployments"); code != http.StatusSeeOther {
			t.Fatalf("a revoked session still reads: %d", code)
		}
		if code, _ := bob.postForm("/sessions/revoke", url.Values{"csrf": {bobCSRF}, "id": {sessions[0]}}); code != http.StatusNotFound {
			t.Fatalf("bob revokes alice's session: %d", code)
		}
		alice.postForm("/signout", url.Values{"csrf": {csrf}})
		if code, _ := alice.get("/deployments"); code != http.StatusSeeOther {
			t.Fatalf("signed out, still reads: %d", code)
		}
	})
}

var sessRe = regexp.MustCompile(`name="id" value="([0-9a-f]+)"`)

func (b *browser) serverSessions(uint64) []string {
	_, page := b.get("/devices")
	var out []string
	for _, m := range sessRe.FindAllStringSubmatch(page, -1) {
		out = append(out, m[1])
	}
	return out
}
