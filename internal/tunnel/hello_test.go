package tunnel

import (
	"bytes"
	"context"
	"crypto/tls"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/zerogrid/zerogrid/internal/identity"
)

// rawHello speaks the backend's side of the hello by hand over TLS+yamux,
// letting the test tamper with the hello before it is signed (or after),
// and returns the gateway's verdicts.
func rawHello(t *testing.T, gw *gateway, key identity.PrivateKey, tamper func(*hello, identity.PrivateKey)) (welcome, *yamux.Session) {
	t.Helper()
	tc, err := clientTLS(key, gw.key.Public())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	raw, err := (&net.Dialer{}).DialContext(ctx, "tcp", gw.addr)
	if err != nil {
		t.Fatal(err)
	}
	conn := tls.Client(raw, tc)
	t.Cleanup(func() { conn.Close() })
	if err := conn.HandshakeContext(ctx); err != nil {
		t.Fatal(err)
	}
	ys, err := yamux.Client(conn, yamuxConfig(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ys.Close() })
	ctrl, err := ys.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	ctrl.SetDeadline(time.Now().Add(10 * time.Second))
	if err := writeFrame(ctrl, preamble{Version: Version}); err != nil {
		t.Fatal(err)
	}
	var ch challenge
	if err := readFrame(ctrl, maxFrame, &ch); err != nil {
		t.Fatal(err)
	}
	cs := conn.ConnectionState()
	binding, _ := cs.ExportKeyingMaterial(exporterLabel, nil, 32)
	h := hello{Body: helloBody{Version: Version, Key: key.Public(), Gateway: gw.key.Public(), Nonce: ch.Nonce,
		Expires: gw.srv.clock.Now().Add(helloLifetime).Unix(), Routes: []RouteDecl{{Name: "web"}}}}
	copy(h.Body.Binding[:], binding)
	if h.Sig, err = key.Sign(helloTag, Version, h.Body); err != nil {
		t.Fatal(err)
	}
	tamper(&h, key)
	if err := writeFrame(ctrl, h); err != nil {
		t.Fatal(err)
	}
	var w welcome
	if err := readFrame(ctrl, maxFrame, &w); err != nil {
		t.Fatalf("no verdict: %v", err)
	}
	return w, ys
}

func TestGatewayChecksHello(t *testing.T) {
	t.Parallel()
	backend, key := newKey(t), newKey(t)
	clk := newFakeClock() // stands still: the expiry bounds are exact
	srv, err := NewServer(ServerConfig{Key: key, Logger: testLogger(t), Clock: clk,
		Authorizer: &holders{m: map[string][]identity.PublicKey{"web": {backend.Public()}}}})
	if err != nil {
		t.Fatal(err)
	}
	gw := serveOn(t, srv, key, "127.0.0.1", false)
	resign := func(h *hello, k identity.PrivateKey) { h.Sig, _ = k.Sign(helloTag, Version, h.Body) }
	expires := func(d time.Duration) func(*hello, identity.PrivateKey) {
		return func(h *hello, k identity.PrivateKey) { h.Body.Expires = clk.Now().Add(d).Unix(); resign(h, k) }
	}
	for _, tc := range []struct {
		name   string
		tamper func(*hello, identity.PrivateKey)
		want   string // "" = accepted
	}{
		{"valid", func(*hello, identity.PrivateKey) {}, ""},
		{"bad signature", func(h *hello, _ identity.PrivateKey) { h.Sig[0] ^= 1 }, "signature"},
		{"changed after signing", func(h *hello, _ identity.PrivateKey) { h.Body.Routes[0].Mode = ModePassthrough }, "signature"},
		{"other nonce (replay)", func(h *hello, k identity.PrivateKey) { h.Body.Nonce[0] ^= 1; resign(h, k) }, "challenge"},
		{"other TLS connection", func(h *hello, k identity.PrivateKey) { h.Body.Binding[0] ^= 1; resign(h, k) }, "another TLS connection"},
		{"expires now", expires(0), ""},
		{"expired a second ago", expires(-time.Second), "expires"},
		{"expires at the limit ahead", expires(2 * helloLifetime), ""},
		{"expires a second past the limit", expires(2*helloLifetime + time.Second), "expires"},
		{"expiry an hour ahead", expires(time.Hour), "expires"},
		{"for another gateway", func(h *hello, k identity.PrivateKey) { h.Body.Gateway = newKey(t).Public(); resign(h, k) }, "gateway"},
		{"key is not the certificate's", func(h *hello, _ identity.PrivateKey) {
			o := newKey(t)
			h.Body.Key = o.Public()
			resign(h, o)
		}, "certificate"},
		{"wrong version", func(h *hello, k identity.PrivateKey) { h.Body.Version = 9; resign(h, k) }, "version"},
		{"no routes", func(h *hello, k identity.PrivateKey) { h.Body.Routes = nil; resign(h, k) }, "routes"},
		{"duplicate name", func(h *hello, k identity.PrivateKey) {
			h.Body.Routes = append(h.Body.Routes, h.Body.Routes[0])
			resign(h, k)
		}, "twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w, _ := rawHello(t, gw, backend, tc.tamper)
			var reasons []string
			ok := false
			for _, v := range w.Verdicts {
				ok = ok || v.OK
				reasons = append(reasons, v.Reason)
			}
			all := strings.Join(reasons, "; ")
			if tc.want == "" {
				if !ok {
					t.Fatalf("valid hello refused: %s", all)
				}
				return
			}
			if !strings.Contains(all, tc.want) {
				t.Fatalf("verdicts %+v, want a reason containing %q", w.Verdicts, tc.want)
			}
		})
	}
}

// A client certificate that is not an identity key never gets a hello.
func TestGatewayNeedsClientCertificate(t *testing.T) {
	t.Parallel()
	gw := startGateway(t, &holders{}, false, 0)
	conn, err := tls.Dial("tcp", gw.addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{alpn}, MinVersion: tls.VersionTLS13})
	if err == nil {
		conn.SetDeadline(time.Now().Add(5 * time.Second))
		_, err = conn.Read(make([]byte, 1)) // TLS 1.3: the server's verdict arrives after the handshake
		conn.Close()
	}
	if err == nil || !bytes.Contains([]byte(err.Error()), []byte("certificate")) {
		t.Fatalf("connection without a client certificate: %v", err)
	}
}

// A backend may open only the control stream; a second one ends its tunnel.
func TestGatewayClosesTunnelOnExtraStream(t *testing.T) {
	t.Parallel()
	backend := newKey(t)
	gw := startGateway(t, &holders{m: map[string][]identity.PublicKey{"web": {backend.Public()}}}, false, 0)
	w, ys := rawHello(t, gw, backend, func(*hello, identity.PrivateKey) {})
	if len(w.Verdicts) != 1 || !w.Verdicts[0].OK {
		t.Fatalf("verdicts %+v", w.Verdicts)
	}
	waitFor(t, "registration", 5*time.Second, func() bool { _, ok := gw.srv.Mode("web"); return ok })
	st, err := ys.OpenStream()
	if err != nil {
		t.Fatal(err)
	}
	st.Write([]byte("x"))
	waitFor(t, "the gateway to drop the tunnel", 5*time.Second, func() bool { _, ok := gw.srv.Mode("web"); return !ok })
	select {
	case <-ys.CloseChan():
	case <-time.After(5 * time.Second):
		t.Fatal("gateway kept the session open")
	}
}
