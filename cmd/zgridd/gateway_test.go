package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/ledgertest"
	"github.com/zerogrid/zerogrid/internal/tunnel"
)

// TestGatewayProcess runs `zgridd gateway` against a real ledger where a
// twin claimed "web" and authorized one backend key: that backend's tunnel
// serves https://web.grid.test, another key's offer for the name is refused
// with the ledger's reason, metrics count the request, and SIGTERM stops the
// process cleanly.
func TestGatewayProcess(t *testing.T) {
	bin := buildZgridd(t)
	c := ledgertest.Start(t, nil)
	owner, _ := identity.GenerateKey(rand.Reader)
	backend, _ := identity.GenerateKey(rand.Reader)
	stranger, _ := identity.GenerateKey(rand.Reader)
	signer := c.Signer(owner)
	submit(t, signer, ledger.Op{TwinRegister: &ledger.TwinRegister{}})
	submit(t, signer, ledger.Op{NameClaim: &ledger.NameClaim{Name: "web"}})
	submit(t, signer, ledger.Op{NameAuthorize: &ledger.NameAuthorize{Name: "web", Keys: []identity.PublicKey{backend.Public()}}})

	dir := t.TempDir()
	https, tun, metrics := freePort(t), freePort(t), freePort(t)
	p, lines := startGatewayProcess(t, bin, "gateway", "--domain", "grid.test", "--ledger", c.URL(), "--dir", dir,
		"--trust-root", ledgertest.TrustFile(t, c), "--listen", https, "--tunnel-listen", tun, "--metrics-listen", metrics, "--drain", "2s")
	var gwKey identity.PublicKey
	for _, l := range lines {
		if k, ok := strings.CutPrefix(l, "gateway key: "); ok {
			if err := gwKey.UnmarshalText([]byte(k)); err != nil {
				t.Fatalf("key line %q: %v", l, err)
			}
		}
	}
	if gwKey.IsZero() || !strings.Contains(strings.Join(lines, "\n"), "CA certificate: "+filepath.Join(dir, "ca.crt")) {
		t.Fatalf("start lines lack the key or the CA path:\n%s", strings.Join(lines, "\n"))
	}
	// It announced where its tunnels are, signed with its key, so that
	// specs can name it by key alone.
	waitFor(t, "the gateway's announce at "+tun, func() (*ledger.Gateway, bool) {
		g, err := c.Gateway(t.Context(), gwKey)
		return g, err == nil && g.Address == tun
	})

	web := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "web via "+r.Header.Get("X-Forwarded-Proto"))
	}))
	defer web.Close()
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	runBackend := func(key identity.PrivateKey) *tunnel.Client {
		cl, err := tunnel.NewClient(tunnel.ClientConfig{
			Key:      key,
			Names:    []tunnel.Route{{Name: "web", Mode: tunnel.ModeHTTP, Target: web.Listener.Addr().String()}},
			Gateways: []tunnel.Gateway{{Addr: tun, Key: gwKey}},
		})
		if err != nil {
			t.Fatal(err)
		}
		go cl.Run(ctx)
		return cl
	}
	runBackend(backend)
	refused := runBackend(stranger)

	caPEM, err := os.ReadFile(filepath.Join(dir, "ca.crt"))
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	hc := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool},
		DialContext: func(ctx context.Context, n, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, n, https)
		},
	}}
	body := waitFor(t, "served through the gateway", func() (string, bool) {
		resp, err := hc.Get("https://web.grid.test/")
		if err != nil {
			return "", false
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return string(b), resp.StatusCode == 200
	})
	if body != "web via https" {
		t.Fatalf("body %q", body)
	}
	reason := waitFor(t, "stranger refused", func() (string, bool) {
		st := refused.Status()
		return st[0].Refused["web"], len(st) == 1 && st[0].Refused["web"] != ""
	})
	if !strings.Contains(reason, "not authorized for name \"web\"") || !strings.Contains(reason, stranger.Public().String()) {
		t.Fatalf("refusal reason %q", reason)
	}

	// A request is counted once its response is finished, which may be
	// just after the client has read it.
	waitFor(t, "the request in the metrics", func() (string, bool) {
		resp, err := http.Get("http://" + metrics + "/metrics")
		if err != nil {
			return err.Error(), false
		}
		m, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return string(m), strings.Contains(string(m), `zgrid_gateway_requests_total{code="200",name="web"}`)
	})

	p.Process.Signal(syscall.SIGTERM)
	if err := p.Wait(); err != nil {
		t.Fatalf("gateway did not stop cleanly on SIGTERM: %v", err)
	}
}

func freePort(t *testing.T) string {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

// startGatewayProcess runs zgridd and returns its first output lines, up
// to the metrics line.
func startGatewayProcess(t *testing.T, bin string, args ...string) (*exec.Cmd, []string) {
	t.Helper()
	p := exec.Command(bin, args...)
	logf, _ := os.Create(filepath.Join(t.TempDir(), "gateway.log"))
	p.Stderr = logf
	out, _ := p.StdoutPipe()
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Process.Kill()
		p.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("gateway log:\n%s", b)
		}
	})
	got := make(chan []string, 1)
	go func() {
		var lines []string
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			lines = append(lines, sc.Text())
			if strings.HasPrefix(sc.Text(), "metrics: ") {
				got <- lines
				io.Copy(io.Discard, out)
				return
			}
		}
		got <- lines
	}()
	select {
	case l := <-got:
		return p, l
	case <-time.After(60 * time.Second):
		t.Fatal("zgridd gateway never said it was ready")
	}
	return nil, nil
}
