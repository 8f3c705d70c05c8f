package gateway

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/gorilla/websocket"
)

// echoHeaders answers with what the backend saw.
func echoHeaders(w http.ResponseWriter, r *http.Request) {
	fmt.Fprintf(w, "host=%s proto=%s xff=%s xfproto=%s xfhost=%s fwd=%s",
		r.Host, r.Proto, r.Header.Get("X-Forwarded-For"), r.Header.Get("X-Forwarded-Proto"),
		r.Header.Get("X-Forwarded-Host"), r.Header.Get("Forwarded"))
}

func TestTerminateRoutesByHost(t *testing.T) {
	t.Parallel()
	mb := newMemBackends()
	mb.addHTTP(t, "alpha", http.HandlerFunc(echoHeaders))
	mb.addHTTP(t, "beta", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "beta") }))
	g, addr := startGateway(t, mb, Limits{})
	for _, h2 := range []bool{false, true} {
		t.Run(fmt.Sprintf("h2=%v", h2), func(t *testing.T) {
			c := clientFor(t, g, addr, h2)
			req, _ := http.NewRequest("GET", "https://alpha."+testDomain+"/x", nil)
			req.Header.Set("X-Forwarded-For", "6.6.6.6")
			req.Header.Set("Forwarded", "for=6.6.6.6")
			req.Header.Set("X-Forwarded-Host", "evil.example")
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body := readAll(t, resp.Body)
			resp.Body.Close()
			wantMajor := 1
			if h2 {
				wantMajor = 2
			}
			if resp.StatusCode != 200 || resp.ProtoMajor != wantMajor {
				t.Fatalf("status %d proto %s, want 200 HTTP/%d", resp.StatusCode, resp.Proto, wantMajor)
			}
			want := "host=alpha.grid.test proto=HTTP/1.1 xff=127.0.0.1 xfproto=https xfhost=alpha.grid.test fwd="
			if body != want {
				t.Fatalf("backend saw\n %s\nwant\n %s", body, want)
			}
			resp, err = c.Get("https://beta." + testDomain + "/")
			if err != nil {
				t.Fatal(err)
			}
			if b := readAll(t, resp.Body); b != "beta" {
				t.Fatalf("beta answered %q", b)
			}
			resp.Body.Close()
		})
	}
}

func TestNotFoundAndBadGatewayRevealNothing(t *testing.T) {
	t.Parallel()
	mb := newMemBackends()
	mb.addHTTP(t, "alpha", http.HandlerFunc(echoHeaders))
	mb.addBroken("down")
	mb.addTLS(t, "secret", selfSigned(t, "secret."+testDomain), http.NotFoundHandler())
	g, addr := startGateway(t, mb, Limits{})
	c := clientFor(t, g, addr, false)
	cases := []struct {
		url  string
		host string
		code int
	}{
		{"https://nobody." + testDomain + "/", "", 404},
		{"https://" + testDomain + "/", "", 404},
		{"https://down." + testDomain + "/", "", 502},
		// a passthrough name reached through terminate mode by Host
		{"https://alpha." + testDomain + "/", "secret." + testDomain, 404},
		{"https://alpha." + testDomain + "/", "other.example", 404},
	}
	for _, tc := range cases {
		req, _ := http.NewRequest("GET", tc.url, nil)
		if tc.host != "" {
			req.Host = tc.host
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s (Host %s): %v", tc.url, tc.host, err)
		}
		body := readAll(t, resp.Body)
		resp.Body.Close()
		want := fmt.Sprintf("%d %s\n", tc.code, http.StatusText(tc.code))
		if resp.StatusCode != tc.code || body != want {
			t.Errorf("%s (Host %s): %d %q, want %d %q", tc.url, tc.host, resp.StatusCode, body, tc.code, want)
		}
		if s := resp.Header.Get("Server"); s != "" {
			t.Errorf("%s: Server header %q", tc.url, s)
		}
		for _, name := range []string{"alpha", "secret", "down"} {
			if strings.Contains(body, name) {
				t.Errorf("%s: body %q names %s", tc.url, body, name)
			}
		}
	}
}

func TestUnknownSNIAndNonTLSAreClosed(t *testing.T) {
	t.Parallel()
	mb := newMemBackends()
	mb.addHTTP(t, "alpha", http.HandlerFunc(echoHeaders))
	g, addr := startGateway(t, mb, Limits{})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(g.CACertPEM())
	for _, sni := range []string{"alpha.other.example", "", "a.b." + testDomain} {
		conn, err := tls.Dial("tcp", addr, &tls.Config{ServerName: sni, InsecureSkipVerify: true})
		if err == nil {
			conn.Close()
			t.Errorf("SNI %q: handshake succeeded, want the connection closed", sni)
		}
	}
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: alpha.grid.test\r\n\r\n")
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 100)); err == nil {
		t.Fatalf("plain HTTP got %d bytes back, want the connection closed", n)
	}
}

func TestWebSocketThroughGateway(t *testing.T) {
	t.Parallel()
	mb := newMemBackends()
	up := websocket.Upgrader{}
	mb.addHTTP(t, "ws", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		c, err := up.Upgrade(w, r, nil)
		if err != nil {
			return
		}
		defer c.Close()
		for {
			mt, m, err := c.ReadMessage()
			if err != nil {
				return
			}
			c.WriteMessage(mt, append([]byte(r.Header.Get("X-Forwarded-For")+":"), m...))
		}
	}))
	g, addr := startGateway(t, mb, Limits{})
	wsEcho(t, g.CACertPEM(), addr, "wss://ws."+testDomain+"/echo", "127.0.0.1:")
	waitMetric(t, g, `zgrid_gateway_requests_total{code="101",name="ws"} 1`)

	// Close ends upgraded connections too, which net/http no longer tracks.
	c := wsDial(t, g.CACertPEM(), addr, "wss://ws."+testDomain+"/echo")
	defer c.Close()
	g.Close()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, _, err := c.ReadMessage(); err == nil || strings.Contains(err.Error(), "timeout") {
		t.Fatalf("WebSocket after Close: %v, want closed", err)
	}
}

func wsDial(t *testing.T, caPEM []byte, addr, url string) *websocket.Conn {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(caPEM)
	d := websocket.Dialer{
		TLSClientConfig:  &tls.Config{RootCAs: pool},
		NetDial:          func(network, _ string) (net.Conn, error) { return net.Dial(network, addr) },
		HandshakeTimeout: 10 * time.Second,
	}
	c, resp, err := d.Dial(url, nil)
	if err != nil {
		t.Fatalf("websocket dial: %v (response %v)", err, resp)
	}
	return c
}

// wsEcho dials url through addr, sends three messages and checks the
// echoes carry prefix.
func wsEcho(t *testing.T, caPEM []byte, addr, url, prefix string) {
	t.Helper()
	c := wsDial(t, caPEM, addr, url)
	defer c.Close()
	for i := range 3 {
		msg := fmt.Sprintf("hello %d", i)
		if err := c.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
			t.Fatal(err)
		}
		c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, got, err := c.ReadMessage()
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != prefix+msg {
			t.Fatalf("echo %q, want %q", got, prefix+msg)
		}
	}
}

func TestPassthroughSplicesTLS(t *testing.T) {
	t.Parallel()
	mb := newMemBackends()
	cert := selfSigned(t, "pass."+testDomain)
	mb.addTLS(t, "pass", cert, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "tls-backend xff=%q", r.Header.Get("X-Forwarded-For"))
	}))
	_, addr := startGateway(t, mb, Limits{})
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	var seen *x509.Certificate
	tr := &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: pool, VerifyConnection: func(cs tls.ConnectionState) error {
			seen = cs.PeerCertificates[0]
			return nil
		}},
		DialContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			return (&net.Dialer{}).DialContext(ctx, network, addr)
		},
	}
	defer tr.CloseIdleConnections()
	resp, err := (&http.Client{Transport: tr}).Get("https://pass." + testDomain + "/")
	if err != nil {
		t.Fatal(err)
	}
	body := readAll(t, resp.Body)
	resp.Body.Close()
	if body != `tls-backend xff=""` {
		t.Fatalf("body %q", body)
	}
	if seen == nil || !seen.Equal(cert.Leaf) {
		t.Fatal("the client did not see the backend's own certificate")
	}
	if c := mb.lastClient("pass"); c.Addr() != netip.MustParseAddr("127.0.0.1") || c.Port() == 0 {
		t.Fatalf("backend was given client %v, want 127.0.0.1:port", c)
	}
}

func selfSigned(t *testing.T, host string) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(), DNSNames: []string{host},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, IsCA: true, BasicConstraintsValid: true,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	leaf, _ := x509.ParseCertificate(der)
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key, Leaf: leaf}
}

func TestConnectionLimits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		lim  Limits
		open int
	}{
		{"per-ip", Limits{MaxConnsPerIP: 3}, 3},
		{"total", Limits{MaxConns: 2}, 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			mb := newMemBackends()
			mb.addHTTP(t, "alpha", http.HandlerFunc(echoHeaders))
			g, addr := startGateway(t, mb, tc.lim)
			var held []net.Conn
			for range tc.open {
				c, err := net.Dial("tcp", addr)
				if err != nil {
					t.Fatal(err)
				}
				held = append(held, c)
			}
			waitMetric(t, g, fmt.Sprintf("zgrid_gateway_client_connections_open %d", tc.open))
			c, err := net.Dial("tcp", addr)
			if err != nil {
				t.Fatal(err)
			}
			c.SetReadDeadline(time.Now().Add(5 * time.Second))
			if _, err := c.Read(make([]byte, 1)); err != io.EOF {
				t.Fatalf("connection over the limit: read %v, want EOF", err)
			}
			c.Close()
			checkMetric(t, g, fmt.Sprintf(`zgrid_gateway_client_connections_rejected_total{reason=%q} 1`, tc.name))
			for _, c := range held {
				c.Close()
			}
			waitMetric(t, g, "zgrid_gateway_client_connections_open 0")
			resp, err := clientFor(t, g, addr, false).Get("https://alpha." + testDomain + "/")
			if err != nil {
				t.Fatalf("after the held connections closed: %v", err)
			}
			resp.Body.Close()
		})
	}
}

// TestSlowlorisKeepsServingOthers holds many connections that trickle a
// ClientHello or request headers; a normal client is served meanwhile and
// the slow ones are cut at the timeouts.
func TestSlowlorisKeepsServingOthers(t *testing.T) {
	t.Parallel()
	mb := newMemBackends()
	mb.addHTTP(t, "alpha", http.HandlerFunc(echoHeaders))
	lim := Limits{HandshakeTimeout: 700 * time.Millisecond, ReadHeaderTimeout: 700 * time.Millisecond, MaxConnsPerIP: 1000}
	g, addr := startGateway(t, mb, lim)
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(g.CACertPEM())

	const slow = 60
	var wg sync.WaitGroup
	cut := make(chan time.Duration, slow)
	for i := range slow {
		wg.Add(1)
		go func() {
			defer wg.Done()
			start := time.Now()
			var c net.Conn
			var err error
			if i%2 == 0 { // trickles a TLS record header, never the hello
				c, err = net.Dial("tcp", addr)
				if err == nil {
					c.Write([]byte{0x16, 0x03})
				}
			} else { // completes TLS, trickles headers
				c, err = tls.Dial("tcp", addr, &tls.Config{ServerName: "alpha." + testDomain, RootCAs: pool, NextProtos: []string{"http/1.1"}})
				if err == nil {
					io.WriteString(c, "GET / HTTP/1.1\r\nHost: alpha.grid.test\r\n")
				}
			}
			if err != nil {
				t.Error(err)
				return
			}
			defer c.Close()
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			for {
				c.Write([]byte("X"))
				if _, err := c.Read(make([]byte, 512)); err != nil {
					break
				}
			}
			cut <- time.Since(start)
		}()
	}
	c := clientFor(t, g, addr, false)
	for range 5 {
		start := time.Now()
		resp, err := c.Get("https://alpha." + testDomain + "/")
		if err != nil {
			t.Fatalf("normal client during the attack: %v", err)
		}
		resp.Body.Close()
		if d := time.Since(start); d > 3*time.Second {
			t.Fatalf("normal request took %v during the attack", d)
		}
	}
	wg.Wait()
	close(cut)
	for d := range cut {
		if d > 5*time.Second {
			t.Fatalf("a slow connection lived %v, want cut near the 700ms timeouts", d)
		}
	}
}

func TestHeaderLimit(t *testing.T) {
	t.Parallel()
	mb := newMemBackends()
	mb.addHTTP(t, "alpha", http.HandlerFunc(echoHeaders))
	g, addr := startGateway(t, mb, Limits{MaxHeaderBytes: 4 << 10})
	req, _ := http.NewRequest("GET", "https://alpha."+testDomain+"/", nil)
	req.Header.Set("X-Big", strings.Repeat("a", 16<<10))
	resp, err := clientFor(t, g, addr, false).Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("16 KiB header: %d, want 431", resp.StatusCode)
	}
}

func TestMetricsPerName(t *testing.T) {
	t.Parallel()
	mb := newMemBackends()
	mb.addHTTP(t, "alpha", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.Copy(io.Discard, r.Body)
		io.WriteString(w, "0123456789")
	}))
	g, addr := startGateway(t, mb, Limits{})
	c := clientFor(t, g, addr, true)
	for range 3 {
		resp, err := c.Post("https://alpha."+testDomain+"/", "text/plain", strings.NewReader("abcde"))
		if err != nil {
			t.Fatal(err)
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	resp, err := c.Get("https://zzz." + testDomain + "/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	g.Metrics().TunnelUp("alpha")
	g.Metrics().TunnelUp("alpha")
	g.Metrics().TunnelDown("alpha")
	g.Metrics().TunnelUp("alpha") // replaces the lost one: a reconnect
	g.Metrics().TunnelDown("alpha")
	for _, want := range []string{
		`zgrid_gateway_requests_total{code="200",name="alpha"} 3`,
		`zgrid_gateway_requests_total{code="404",name="_unrouted"} 1`,
		`zgrid_gateway_received_bytes_total{name="alpha"} 15`,
		`zgrid_gateway_sent_bytes_total{name="alpha"} 30`,
		`zgrid_gateway_request_duration_seconds_count{name="alpha"} 3`,
		`zgrid_gateway_tunnels_up{name="alpha"} 1`,
		`zgrid_gateway_tunnel_reconnects_total{name="alpha"} 1`,
	} {
		// A request is counted once its response is finished, which may
		// be just after the client has read it.
		waitMetric(t, g, want)
	}
}

func scrape(t *testing.T, g *Gateway) string {
	t.Helper()
	rec := &memResponse{header: http.Header{}}
	req, _ := http.NewRequest("GET", "/metrics", nil)
	g.Metrics().Handler().ServeHTTP(rec, req)
	return rec.body.String()
}

func checkMetric(t *testing.T, g *Gateway, line string) {
	t.Helper()
	if m := scrape(t, g); !containsLine(m, line) {
		t.Fatalf("metrics lack %q:\n%s", line, grepLines(m, "zgrid_gateway"))
	}
}

func waitMetric(t *testing.T, g *Gateway, line string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !containsLine(scrape(t, g), line) {
		if time.Now().After(deadline) {
			t.Fatalf("metrics never showed %q:\n%s", line, grepLines(scrape(t, g), "zgrid_gateway"))
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func containsLine(text, line string) bool {
	sc := bufio.NewScanner(strings.NewReader(text))
	for sc.Scan() {
		if sc.Text() == line {
			return true
		}
	}
	return false
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) && !strings.HasPrefix(l, "#") {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

func TestIdleConnectionClosed(t *testing.T) {
	t.Parallel()
	mb := newMemBackends()
	mb.addHTTP(t, "alpha", http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	g, addr := startGateway(t, mb, Limits{IdleTimeout: 300 * time.Millisecond})
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(g.CACertPEM())
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: "alpha." + testDomain, RootCAs: pool, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: alpha.grid.test\r\n\r\n")
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	readAll(t, resp.Body)
	start := time.Now()
	c.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := br.ReadByte(); err != io.EOF {
		t.Fatalf("idle keep-alive connection: %v, want EOF", err)
	}
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("closed after %v idle, want about 300ms", d)
	}
}

// TestRetryOnDeadStream: a stream that dies before any response (its
// backend went away) is retried for replayable requests only.
func TestRetryOnDeadStream(t *testing.T) {
	t.Parallel()
	mb := newMemBackends()
	mb.addHTTP(t, "alpha", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { io.WriteString(w, r.Method) }))
	g, addr := startGateway(t, mb, Limits{})
	c := clientFor(t, g, addr, false)
	mb.mu.Lock()
	mb.names["alpha"].dead = 2
	mb.mu.Unlock()
	resp, err := c.Get("https://alpha." + testDomain + "/")
	if err != nil {
		t.Fatal(err)
	}
	if b := readAll(t, resp.Body); resp.StatusCode != 200 || b != "GET" {
		t.Fatalf("GET after two dead streams: %d %q, want 200 GET", resp.StatusCode, b)
	}
	resp.Body.Close()
	// The GET's stream goes back to the pool once its response is
	// finished, which may be just after the client has read it.
	waitIdleStream(t, g, "alpha")
	closeIdleStreams(g)
	mb.mu.Lock()
	mb.names["alpha"].dead = 1
	mb.mu.Unlock()
	resp, err = c.Post("https://alpha."+testDomain+"/", "text/plain", strings.NewReader("x"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadGateway {
		t.Fatalf("POST on a dead stream: %d, want 502 (never replayed)", resp.StatusCode)
	}
}

func TestOpenConnectionsGaugeSurvivesDoubleClose(t *testing.T) {
	t.Parallel()
	g, _ := startGateway(t, newMemBackends(), Limits{})
	a, b := net.Pipe()
	defer b.Close()
	release, _ := g.limiter.acquire(netip.MustParseAddr("192.0.2.1"))
	g.metrics.openConns.Inc()
	lc := &limitedConn{Conn: a, release: func() { release(); g.metrics.openConns.Dec() }}
	lc.Close()
	lc.Close()
	checkMetric(t, g, "zgrid_gateway_client_connections_open 0")
}

// closeIdleStreams drops the idle backend streams of both proxy paths, so
// the next request dials a new one.
func closeIdleStreams(g *Gateway) {
	g.proxy.(*httputil.ReverseProxy).Transport.(retryTransport).rt.(*http.Transport).CloseIdleConnections()
	g.pool.mu.Lock()
	idle := g.pool.idle
	g.pool.idle = map[string][]*backendConn{}
	g.pool.mu.Unlock()
	for _, list := range idle {
		for _, bc := range list {
			bc.Close()
		}
	}
}

func waitIdleStream(t *testing.T, g *Gateway, name string) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		g.pool.mu.Lock()
		n := len(g.pool.idle[name])
		g.pool.mu.Unlock()
		if n > 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("no idle stream of %s in the pool after 5s", name)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
