package tunnel

import (
	"bufio"
	"context"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/netnstest"
)

const backendEnv = "ZG_TUNNEL_TEST_BACKEND" // gateway addr, gateway key, backend seed (hex)

// TestHelperBackendProcess is the backend half of TestNetnsTunnel, run as
// a separate process inside the backend's namespace. It serves an echo
// target on all addresses and prints a line per status change.
func TestHelperBackendProcess(t *testing.T) {
	spec := os.Getenv(backendEnv)
	if spec == "" {
		t.Skip("helper process for TestNetnsTunnel")
	}
	f := strings.Fields(spec)
	gwKey, err := identity.ParsePublicKey(f[1])
	if err != nil {
		t.Fatal(err)
	}
	seed, _ := hex.DecodeString(f[2])
	key, err := identity.NewPrivateKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", ":"+f[3])
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); fmt.Fprintln(c, "nsb"); buf := make([]byte, 64<<10); copyEcho(c, buf) }()
		}
	}()
	c, err := NewClient(ClientConfig{
		Key: key, Names: []Route{{Name: "web", Target: l.Addr().String()}},
		Gateways:  []Gateway{{Addr: f[0], Key: gwKey}},
		Heartbeat: 300 * time.Millisecond, FallbackAfter: 700 * time.Millisecond, MaxBackoff: time.Second,
	})
	if err != nil {
		t.Fatal(err)
	}
	go c.Run(context.Background())
	last := ""
	for { // runs until the parent kills it
		s := c.Status()[0]
		line := fmt.Sprintf("status connected=%v transport=%s", s.Connected, s.Transport)
		if line != last {
			fmt.Println(line)
			last = line
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func copyEcho(c net.Conn, buf []byte) {
	for {
		n, err := c.Read(buf)
		if n > 0 {
			if _, werr := c.Write(buf[:n]); werr != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// TestNetnsTunnel: gateway and backend in two namespaces joined by a veth;
// the backend's namespace drops every new inbound connection, yet the
// service is reachable through the tunnel. Then the link is cut and comes
// back (the tunnel reconnects by itself), and UDP is blocked (the backend
// falls back to TLS over TCP).
func TestNetnsTunnel(t *testing.T) {
	netnstest.NeedRoot(t, "nft")
	gwNS := netnstest.NewNetns(t, netnstest.Name("tung"))
	beNS := netnstest.NewNetns(t, netnstest.Name("tunb"))
	vg, vb := netnstest.Name("tunv"), netnstest.Name("tunv")
	netnstest.Run(t, "ip", "link", "add", vg, "netns", gwNS, "type", "veth", "peer", "name", vb, "netns", beNS)
	netnstest.Run(t, "ip", "-n", gwNS, "addr", "add", "10.231.0.1/24", "dev", vg)
	netnstest.Run(t, "ip", "-n", beNS, "addr", "add", "10.231.0.2/24", "dev", vb)
	netnstest.Run(t, "ip", "-n", gwNS, "link", "set", vg, "up")
	netnstest.Run(t, "ip", "-n", beNS, "link", "set", vb, "up")
	nft := func(args ...string) {
		t.Helper()
		if out, err := netnstest.Exec(beNS, append([]string{"nft"}, args...)...); err != nil {
			t.Fatalf("nft %v: %v: %s", args, err, out)
		}
	}
	nft("add", "table", "inet", "tun")
	nft("add", "chain", "inet", "tun", "in", "{ type filter hook input priority 0; policy accept; }")
	nft("add", "chain", "inet", "tun", "out", "{ type filter hook output priority 0; policy accept; }")
	nft("add", "rule", "inet", "tun", "in", "iifname", vb, "ct", "state", "new", "drop")

	backend := newKey(t)
	gwKey := newKey(t)
	srv, err := NewServer(ServerConfig{Key: gwKey, Logger: testLogger(t), Heartbeat: 300 * time.Millisecond,
		Authorizer: &holders{m: map[string][]identity.PublicKey{"web": {backend.Public()}}}})
	if err != nil {
		t.Fatal(err)
	}
	var gw *gateway
	netnstest.In(t, gwNS, func() { gw = serveOn(t, srv, gwKey, "10.231.0.1", true) })

	const targetPort = "18080"
	cmd := exec.Command("ip", "netns", "exec", beNS, os.Args[0], "-test.run=^TestHelperBackendProcess$", "-test.v")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s %s %x %s", backendEnv, gw.addr, gwKey.Public(), backend.Seed(), targetPort))
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	var mu sync.Mutex
	status := ""
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "status ") {
				mu.Lock()
				status = sc.Text()
				mu.Unlock()
			}
		}
	}()
	statusIs := func(s string) func() bool {
		return func() bool { mu.Lock(); defer mu.Unlock(); return status == s }
	}

	waitFor(t, "QUIC tunnel", 15*time.Second, statusIs("status connected=true transport=quic"))
	if id, err := roundTrip(t, srv, "web", "through the tunnel"); err != nil || id != "nsb" {
		t.Fatalf("round trip: %q, %v", id, err)
	}
	// The firewall is real: the gateway cannot connect to the backend.
	netnstest.In(t, gwNS, func() {
		c, err := net.DialTimeout("tcp", "10.231.0.2:"+targetPort, 500*time.Millisecond)
		if err == nil {
			c.Close()
			t.Error("direct TCP into the backend namespace got through the nft drop")
		}
	})

	// Cut the link for 2 s: heartbeats fail, the tunnel comes back by itself.
	netnstest.Run(t, "ip", "-n", beNS, "link", "set", vb, "down")
	waitFor(t, "the backend to see the cut", 5*time.Second, statusIs("status connected=false transport=quic"))
	time.Sleep(2 * time.Second)
	netnstest.Run(t, "ip", "-n", beNS, "link", "set", vb, "up")
	waitFor(t, "reconnect after the cut", 15*time.Second, statusIs("status connected=true transport=quic"))
	waitFor(t, "gateway sees the backend", 5*time.Second, func() bool { _, ok := srv.Mode("web"); return ok })
	if _, err := roundTrip(t, srv, "web", "after the cut"); err != nil {
		t.Fatal(err)
	}

	// Block UDP: the tunnel falls back to TLS over TCP.
	nft("add", "rule", "inet", "tun", "out", "oifname", vb, "meta", "l4proto", "udp", "drop")
	waitFor(t, "fallback to TCP", 15*time.Second, statusIs("status connected=true transport=tls+tcp"))
	waitFor(t, "gateway sees the backend", 5*time.Second, func() bool { _, ok := srv.Mode("web"); return ok })
	if _, err := roundTrip(t, srv, "web", "over tcp"); err != nil {
		t.Fatal(err)
	}
}
