package main

import (
	"bytes"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/auth"
	"github.com/zerogrid/zerogrid/internal/gateway"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/ledgertest"
	"github.com/zerogrid/zerogrid/internal/ledger/passkeytest"
	"github.com/zerogrid/zerogrid/internal/portal"
)

// withStdin feeds text to what the command reads from standard input.
func withStdin(t *testing.T, text string) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	old := os.Stdin
	os.Stdin = r
	t.Cleanup(func() { os.Stdin = old; r.Close() })
	go func() { _, _ = io.WriteString(w, text); w.Close() }()
}

// TestCLIPasskeyAddAndLoginApprove runs `zgrid passkey add` on a token as
// the portal makes it, and `zgrid login approve` against a running
// portal: a wrong number, then the right one signs the browser in.
func TestCLIPasskeyAddAndLoginApprove(t *testing.T) {
	t.Setenv("ZGRID_PASSPHRASE", "correct horse battery staple")
	c := ledgertest.Start(t, nil)
	t.Setenv("ZGRID_TRUST", ledgertest.TrustFile(t, c))
	key := filepath.Join(t.TempDir(), "me.key")
	if _, _, err := run(t, "key", "new", "--out", key); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, "--ledger", c.URL(), "--key", key, "twin", "register"); err != nil {
		t.Fatal(err)
	}

	// The portal as zgrid up runs it: the local CA's certificate for
	// portal.grid.localhost, which zgrid reaches on loopback.
	get, ca, err := gateway.LocalCertificates(t.TempDir(), "grid.localhost")
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewUnstartedServer(nil)
	ts.TLS = &tls.Config{GetCertificate: get}
	ts.StartTLS()
	t.Cleanup(ts.Close)
	origin := "https://portal.grid.localhost:" + ts.URL[strings.LastIndex(ts.URL, ":")+1:]
	p, err := portal.New(portal.Options{Origin: origin, Ledger: c})
	if err != nil {
		t.Fatal(err)
	}
	ts.Config.Handler = p
	hc, err := portalClient(ca)
	if err != nil {
		t.Fatal(err)
	}

	// passkey add: the token names the portal and the passkey.
	a := passkeytest.New("portal.grid.localhost", origin, false)
	tok, err := auth.EncodeRegistration(1, &ledger.TwinAddPasskey{Name: "laptop", Credential: a.Credential, PublicKey: a.COSEKey(), Origin: origin, RPID: "portal.grid.localhost"})
	if err != nil {
		t.Fatal(err)
	}
	_, stderr, err := run(t, "--ledger", c.URL(), "--key", key, "passkey", "add", "--yes", tok)
	if err != nil || !strings.Contains(stderr, origin) {
		t.Fatalf("passkey add: %v (stderr %q)", err, stderr)
	}
	// This test's client reads from its own newest verified header, which
	// may be a block behind the one the CLI's transaction went into.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		tw, err := c.Twin(t.Context(), 1)
		if err == nil && tw.ActiveKey(ledger.PasskeyHandle(1, a.Credential)) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the passkey is not a device of twin 1: %v", err)
		}
	}
	if _, _, err := run(t, "--ledger", c.URL(), "--key", key, "passkey", "add", "--yes", tok[:len(tok)-4]); err == nil {
		t.Fatal("a damaged token was accepted")
	}

	// login approve: the browser asks, the CLI approves after one wrong try.
	post := func(path string, v any) map[string]any {
		body, _ := json.Marshal(v)
		req, _ := http.NewRequest(http.MethodPost, origin+path, bytes.NewReader(body))
		req.Header.Set("Origin", origin)
		req.Header.Set("Content-Type", "application/json")
		resp, err := hc.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		return m
	}
	ask := post("/api/login/request", map[string]string{"twin": "1"})
	number := int(ask["number"].(float64))
	wrong := number%89 + 10
	withStdin(t, fmt.Sprintf("%d\n%d\n", wrong, number))
	out, stderr, err := run(t, "--ledger", c.URL(), "--key", key, "login", "approve", "--portal", origin, "--ca", ca)
	if err != nil || !strings.Contains(out, "approved") || !strings.Contains(stderr, "2 attempts left") || !strings.Contains(stderr, origin) {
		t.Fatalf("login approve: %v\nstdout %q\nstderr %q", err, out, stderr)
	}
	if m := post("/api/login/poll", map[string]any{"id": ask["id"], "poll": ask["poll"]}); m["approved"] != true {
		t.Fatalf("the browser is not signed in: %v", m)
	}
}
