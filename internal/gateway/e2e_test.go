package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/gorilla/websocket"
	"github.com/pires/go-proxyproto"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/netnstest"
	"github.com/zerogrid/zerogrid/internal/tunnel"
)

// The end-to-end test runs backends as copies of the test binary inside a
// backend namespace; TestMain turns such a copy into the backend.
func TestMain(m *testing.M) {
	if os.Getenv("ZGW_ROLE") == "backend" {
		if err := runBackendRole(); err != nil {
			fmt.Fprintln(os.Stderr, "backend:", err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

const (
	e2eGatewayIP = "10.77.0.1"
	e2eBackendIP = "10.77.0.2"
	e2eHTTPPort  = "8080" // backend's plain HTTP server, all addresses (nft drops inbound TCP)
	// e2eHeartbeat makes a killed backend's tunnel end within 3 s.
	e2eHeartbeat = time.Second
)

// runBackendRole serves HTTP (and WebSocket echo) and TLS with PROXY v2,
// and exposes them through a tunnel to the gateway named in the
// environment, until SIGTERM.
func runBackendRole() error {
	id := os.Getenv("ZGW_ID")
	seed, _ := hex.DecodeString(os.Getenv("ZGW_SEED"))
	key, err := identity.NewPrivateKey(seed)
	if err != nil {
		return err
	}
	var gwKey identity.PublicKey
	if err := gwKey.UnmarshalText([]byte(os.Getenv("ZGW_GATEWAY_KEY"))); err != nil {
		return err
	}
	port := e2eHTTPPort
	if id != "0" {
		port = "809" + id
	}
	hln, err := net.Listen("tcp", ":"+port)
	if err != nil {
		return err
	}
	up := websocket.Upgrader{}
	mux := http.NewServeMux()
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "backend=%s proto=%s xff=%s", id, r.Proto, r.Header.Get("X-Forwarded-For"))
	})
	mux.HandleFunc("/ws", func(w http.ResponseWriter, r *http.Request) {
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
	})
	go http.Serve(hln, mux)

	cert, err := tls.LoadX509KeyPair(os.Getenv("ZGW_CERT"), os.Getenv("ZGW_CERTKEY"))
	if err != nil {
		return err
	}
	tln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	pln := &proxyproto.Listener{Listener: tln, Policy: func(net.Addr) (proxyproto.Policy, error) { return proxyproto.REQUIRE, nil }}
	go http.Serve(tls.NewListener(pln, &tls.Config{Certificates: []tls.Certificate{cert}}), http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "pass=%s client=%s", id, r.RemoteAddr)
	}))

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	c, err := tunnel.NewClient(tunnel.ClientConfig{
		Key: key,
		Names: []tunnel.Route{
			{Name: "web", Mode: tunnel.ModeHTTP, Target: "127.0.0.1:" + port},
			{Name: "pass", Mode: tunnel.ModePassthrough, Target: tln.Addr().String(), ProxyProtocol: true},
		},
		Gateways:  []tunnel.Gateway{{Addr: os.Getenv("ZGW_GATEWAY"), Key: gwKey}},
		Logger:    testLogger(),
		Heartbeat: e2eHeartbeat,
	})
	if err != nil {
		return err
	}
	fmt.Println("ready")
	err = c.Run(ctx)
	if ctx.Err() != nil {
		return nil
	}
	return err
}

type e2eWorld struct {
	gwNS, beNS string
	beLink     string
	gw         *Gateway
	gwKey      identity.PrivateKey
	addr       string // gateway HTTPS address in gwNS
	dir        string
	seeds      [2][]byte
	client     *http.Client
	h2client   *http.Client
	passCert   tls.Certificate
}

func newE2E(t *testing.T) *e2eWorld {
	netnstest.NeedRoot(t, "nft")
	w := &e2eWorld{dir: t.TempDir()}
	w.gwNS = netnstest.NewNetns(t, netnstest.Name("zgw"))
	w.beNS = netnstest.NewNetns(t, netnstest.Name("zgw"))
	a, b := netnstest.Name("zgw"), netnstest.Name("zgw")
	netnstest.Run(t, "ip", "link", "add", a, "netns", w.gwNS, "type", "veth", "peer", "name", b, "netns", w.beNS)
	netnstest.Run(t, "ip", "-n", w.gwNS, "addr", "add", e2eGatewayIP+"/24", "dev", a)
	netnstest.Run(t, "ip", "-n", w.beNS, "addr", "add", e2eBackendIP+"/24", "dev", b)
	netnstest.Run(t, "ip", "-n", w.gwNS, "link", "set", a, "up")
	netnstest.Run(t, "ip", "-n", w.beNS, "link", "set", b, "up")
	w.beLink = b
	// The backend's namespace accepts no inbound TCP connection at all.
	for _, rule := range [][]string{
		{"add", "table", "inet", "zgw"},
		{"add", "chain", "inet", "zgw", "in", "{ type filter hook input priority 0; policy accept; }"},
		{"add", "rule", "inet", "zgw", "in", "iif", "lo", "accept"},
		{"add", "rule", "inet", "zgw", "in", "ct", "state", "established,related", "accept"},
		{"add", "rule", "inet", "zgw", "in", "meta", "l4proto", "tcp", "drop"},
	} {
		if out, err := netnstest.Exec(w.beNS, append([]string{"nft"}, rule...)...); err != nil {
			t.Fatalf("nft %v: %v: %s", rule, err, out)
		}
	}

	key, err := LoadOrCreateKey(w.dir)
	if err != nil {
		t.Fatal(err)
	}
	w.gwKey = key
	for i := range w.seeds {
		w.seeds[i] = make([]byte, 32)
		for j := range w.seeds[i] {
			w.seeds[i][j] = byte(i + 1)
		}
	}
	src := &fakeNameServers{names: map[string]ledger.NameServers{}}
	var keys []identity.PublicKey
	for _, s := range w.seeds {
		k, _ := identity.NewPrivateKey(s)
		keys = append(keys, k.Public())
	}
	src.names["web"] = ledger.NameServers{Name: "web", Owner: 1, Keys: keys}
	src.names["pass"] = ledger.NameServers{Name: "pass", Owner: 1, Keys: keys}
	metrics := NewMetrics()
	ts, err := tunnel.NewServer(tunnel.ServerConfig{Key: key, Heartbeat: e2eHeartbeat, Authorizer: NewLedgerAuthorizer(src, time.Second), Logger: testLogger(), Observer: metrics})
	if err != nil {
		t.Fatal(err)
	}
	w.gw, err = New(Config{Domain: testDomain, Dir: w.dir, Backends: TunnelBackends(ts), Logger: testLogger(), Metrics: metrics})
	if err != nil {
		t.Fatal(err)
	}
	var ln, tln net.Listener
	var pc net.PacketConn
	netnstest.In(t, w.gwNS, func() {
		var err error
		if ln, err = net.Listen("tcp", e2eGatewayIP+":8443"); err != nil {
			t.Error(err)
			return
		}
		if tln, err = net.Listen("tcp", e2eGatewayIP+":4443"); err != nil {
			t.Error(err)
			return
		}
		if pc, err = net.ListenPacket("udp", e2eGatewayIP+":4443"); err != nil {
			t.Error(err)
		}
	})
	if t.Failed() {
		t.FailNow()
	}
	ctx, cancel := context.WithCancel(context.Background())
	go ts.ServeQUIC(ctx, pc)
	go ts.ServeTLS(ctx, tln)
	go w.gw.Serve(ln)
	t.Cleanup(func() { cancel(); w.gw.Close(); pc.Close(); tln.Close() })
	w.addr = ln.Addr().String()
	w.client = w.httpClient(t, false)
	w.h2client = w.httpClient(t, true)

	w.passCert = selfSigned(t, "pass."+testDomain)
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: w.passCert.Certificate[0]})
	keyDER, _ := x509.MarshalPKCS8PrivateKey(w.passCert.PrivateKey)
	os.WriteFile(filepath.Join(w.dir, "pass.crt"), certPEM, 0o644)
	os.WriteFile(filepath.Join(w.dir, "pass.key"), pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: keyDER}), 0o600)
	return w
}

// dialInGW dials from the gateway's namespace (a client on the gateway's
// network).
func (w *e2eWorld) dialInGW(t *testing.T, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	var err error
	netnstest.In(t, w.gwNS, func() { c, err = net.DialTimeout("tcp", addr, timeout) })
	return c, err
}

func (w *e2eWorld) httpClient(t *testing.T, h2 bool) *http.Client {
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(w.gw.CACertPEM())
	tr := &http.Transport{
		TLSClientConfig:   &tls.Config{RootCAs: pool},
		DialContext:       func(ctx context.Context, _, _ string) (net.Conn, error) { return w.dialInGW(t, w.addr, 5*time.Second) },
		ForceAttemptHTTP2: h2,
		DisableKeepAlives: !h2,
	}
	if !h2 {
		tr.TLSNextProto = map[string]func(string, *tls.Conn) http.RoundTripper{}
	}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

// startBackend runs backend i in the backend namespace; the returned
// function kills it.
func (w *e2eWorld) startBackend(t *testing.T, i int) (kill func()) {
	cmd := exec.Command("ip", "netns", "exec", w.beNS, os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), "ZGW_ROLE=backend", fmt.Sprintf("ZGW_ID=%d", i),
		"ZGW_SEED="+hex.EncodeToString(w.seeds[i]), "ZGW_GATEWAY_KEY="+w.gwKey.Public().String(),
		"ZGW_GATEWAY="+e2eGatewayIP+":4443",
		"ZGW_CERT="+filepath.Join(w.dir, "pass.crt"), "ZGW_CERTKEY="+filepath.Join(w.dir, "pass.key"))
	cmd.Stderr = os.Stderr
	out, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() { cmd.Wait(); close(done) }()
	kill = func() {
		cmd.Process.Signal(syscall.SIGKILL)
		<-done
	}
	t.Cleanup(kill)
	line, _ := bufio.NewReader(out).ReadString('\n')
	if strings.TrimSpace(line) != "ready" {
		t.Fatalf("backend %d did not start: %q", i, line)
	}
	go io.Copy(io.Discard, out)
	return kill
}

func (w *e2eWorld) get(c *http.Client, path string) (string, error) {
	resp, err := c.Get("https://web." + testDomain + path)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		return string(b), fmt.Errorf("status %d: %s", resp.StatusCode, b)
	}
	return string(b), err
}

// waitServed polls until a request through the gateway succeeds.
func (w *e2eWorld) waitServed(t *testing.T, within time.Duration) {
	t.Helper()
	deadline := time.Now().Add(within)
	for {
		_, err := w.get(w.client, "/")
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("not served through the gateway after %v: %v", within, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestEndToEndThroughTunnel(t *testing.T) {
	w := newE2E(t)
	kill0 := w.startBackend(t, 0)
	w.waitServed(t, 20*time.Second)

	// The backend accepts no inbound TCP: a direct connection fails.
	if c, err := w.dialInGW(t, e2eBackendIP+":"+e2eHTTPPort, time.Second); err == nil {
		c.Close()
		t.Fatal("a direct TCP connection to the backend succeeded; the nft drop is not in force")
	}

	t.Run("http1", func(t *testing.T) {
		body, err := w.get(w.client, "/")
		if err != nil || body != "backend=0 proto=HTTP/1.1 xff="+e2eGatewayIP {
			t.Fatalf("%q, %v", body, err)
		}
	})
	t.Run("http2", func(t *testing.T) {
		resp, err := w.h2client.Get("https://web." + testDomain + "/")
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp.Body)
		resp.Body.Close()
		if resp.ProtoMajor != 2 || body != "backend=0 proto=HTTP/1.1 xff="+e2eGatewayIP {
			t.Fatalf("%s %q", resp.Proto, body)
		}
	})
	t.Run("websocket", func(t *testing.T) {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(w.gw.CACertPEM())
		d := websocket.Dialer{
			TLSClientConfig:  &tls.Config{RootCAs: pool},
			NetDial:          func(string, string) (net.Conn, error) { return w.dialInGW(t, w.addr, 5*time.Second) },
			HandshakeTimeout: 10 * time.Second,
		}
		c, _, err := d.Dial("wss://web."+testDomain+"/ws", nil)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		for i := range 3 {
			msg := fmt.Sprint("m", i)
			c.WriteMessage(websocket.TextMessage, []byte(msg))
			c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, got, err := c.ReadMessage()
			if err != nil || string(got) != e2eGatewayIP+":"+msg {
				t.Fatalf("echo %q %v", got, err)
			}
		}
	})
	t.Run("passthrough", func(t *testing.T) {
		pool := x509.NewCertPool()
		pool.AddCert(w.passCert.Leaf)
		var local string
		tr := &http.Transport{
			TLSClientConfig: &tls.Config{RootCAs: pool},
			DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
				c, err := w.dialInGW(t, w.addr, 5*time.Second)
				if err == nil {
					local = c.LocalAddr().String()
				}
				return c, err
			},
		}
		defer tr.CloseIdleConnections()
		// Trusting only the backend's own certificate proves the gateway
		// did not terminate TLS.
		resp, err := (&http.Client{Transport: tr, Timeout: 10 * time.Second}).Get("https://pass." + testDomain + "/")
		if err != nil {
			t.Fatal(err)
		}
		body := readAll(t, resp.Body)
		resp.Body.Close()
		if body != "pass=0 client="+local {
			t.Fatalf("backend answered %q, want it to see the client as %s (PROXY v2)", body, local)
		}
	})

	t.Run("link cut", func(t *testing.T) {
		netnstest.Run(t, "ip", "-n", w.beNS, "link", "set", w.beLink, "down")
		time.Sleep(4 * time.Second)
		netnstest.Run(t, "ip", "-n", w.beNS, "link", "set", w.beLink, "up")
		w.waitServed(t, 45*time.Second)
	})

	t.Run("failover", func(t *testing.T) {
		w.startBackend(t, 1)
		waitMetric(t, w.gw, `zgrid_gateway_tunnels_up{name="web"} 2`)
		// Backend 0 holds the gateway's pooled streams; kill it without
		// warning. Requests must keep succeeding, served by backend 1.
		kill0()
		for i := range 20 {
			body, err := w.get(w.client, "/")
			if err != nil || !strings.HasPrefix(body, "backend=1 ") {
				t.Fatalf("request %d after killing backend 0: %q %v", i, body, err)
			}
		}
		waitMetric(t, w.gw, `zgrid_gateway_tunnels_up{name="web"} 1`)
	})
	checkMetric(t, w.gw, `zgrid_gateway_passthrough_connections_total{name="pass"} 1`)
	checkMetric(t, w.gw, `zgrid_gateway_tunnel_reconnects_total{name="web"} 1`)
}
