package gatewayname

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/eventlog"
	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/tunnel"
	"github.com/zerogrid/zerogrid/internal/workload"
	"github.com/zerogrid/zerogrid/internal/workload/workloadtest"
)

// clientRole, as the first argument, makes the test binary a tunnel
// client (what `zgridd tunnel-client` runs): the manager under test
// starts it as its Command.
const clientRole = "gatewayname-test-tunnel-client"

func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == clientRole {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		err := RunClient(ctx, os.Stderr)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// allow authorizes one key for every name.
type allow identity.PublicKey

func (a allow) Authorize(_ context.Context, name string, key identity.PublicKey) error {
	if key != identity.PublicKey(a) {
		return fmt.Errorf("%w: key %s is not authorized for name %s", tunnel.ErrNotAuthorized, key, name)
	}
	return nil
}

// loopSiblings resolves every container to loopback, where the test's
// backend listens.
type loopSiblings struct{}

func (loopSiblings) HostPath(context.Context, string) (string, error) {
	return "", workload.ErrNotFound
}
func (loopSiblings) Addr(context.Context, string) (netip.Addr, error) {
	return netip.MustParseAddr("127.0.0.1"), nil
}
func (loopSiblings) Network(context.Context) (workload.NetAttach, bool, error) {
	return workload.NetAttach{}, false, nil
}

// tunnelCount counts the tunnels up per name at a gateway.
type tunnelCount struct {
	mu sync.Mutex
	up map[string]int
}

func (c *tunnelCount) TunnelUp(name string)   { c.mu.Lock(); c.up[name]++; c.mu.Unlock() }
func (c *tunnelCount) TunnelDown(name string) { c.mu.Lock(); c.up[name]--; c.mu.Unlock() }
func (c *tunnelCount) of(name string) int     { c.mu.Lock(); defer c.mu.Unlock(); return c.up[name] }

// gatewayServer runs a real tunnel server (QUIC and TLS on one port) that
// authorizes key.
func gatewayServer(t *testing.T, key identity.PublicKey) (*tunnel.Server, spec.GatewayRef) {
	srv, gw, _ := countingGateway(t, key)
	return srv, gw
}

func countingGateway(t *testing.T, key identity.PublicKey) (*tunnel.Server, spec.GatewayRef, *tunnelCount) {
	gk, _ := identity.GenerateKey(rand.Reader)
	return gatewayWithKey(t, gk, key)
}

// gatewayWithKey runs a tunnel server with key gk on a new port that
// authorizes key.
func gatewayWithKey(t *testing.T, gk identity.PrivateKey, key identity.PublicKey) (*tunnel.Server, spec.GatewayRef, *tunnelCount) {
	count := &tunnelCount{up: map[string]int{}}
	srv, err := tunnel.NewServer(tunnel.ServerConfig{Key: gk, Authorizer: allow(key), Observer: count})
	if err != nil {
		t.Fatal(err)
	}
	var l net.Listener
	var pc net.PacketConn
	for range 20 {
		if l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if pc, err = net.ListenPacket("udp", l.Addr().String()); err == nil {
			break
		}
		l.Close()
	}
	if pc == nil {
		t.Fatal("no port free for both TCP and UDP")
	}
	ctx := context.Background()
	go srv.ServeQUIC(ctx, pc)
	go srv.ServeTLS(ctx, l)
	t.Cleanup(func() { srv.Close(); pc.Close() })
	return srv, spec.GatewayRef{Address: l.Addr().String(), Key: gk.Public()}, count
}

func gatewayWorkload(t *testing.T, name, public string, port uint16, gw spec.GatewayRef) spec.Workload {
	w := spec.Workload{Name: name, Type: spec.TypeGatewayName}
	if err := w.SetConfig(spec.GatewayNameConfig{Name: public, Backend: "web", Port: port, Gateways: []spec.GatewayRef{gw}}); err != nil {
		t.Fatal(err)
	}
	return w
}

func testLog() *slog.Logger {
	if testing.Verbose() {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.DiscardHandler)
}

// newManager returns a manager over dir whose tunnel clients are this
// test binary. When the test ends it is closed and any client left under
// dir is killed: no process outlives the test.
func newManager(t *testing.T, key identity.PrivateKey, dir string) *Manager {
	return newManagerWith(t, key, dir, nil)
}

// newManagerWith is newManager with Config changed by set.
func newManagerWith(t *testing.T, key identity.PrivateKey, dir string, set func(*Config)) *Manager {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cfg := Config{DataDir: dir, Log: testLog(), Clock: workload.SystemClock{}, Key: key,
		Command: []string{exe, clientRole}, StopTimeout: 2 * time.Second}
	if set != nil {
		set(&cfg)
	}
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { killLeftovers(t, m) })
	t.Cleanup(func() { m.Close() })
	return m
}

func killLeftovers(t *testing.T, m *Manager) {
	refs, _ := m.List(context.Background())
	for _, ref := range refs {
		if rec, ok, _ := m.load(ref); ok && rec.Proc != nil {
			if p, _ := adopt(*rec.Proc); p != nil {
				t.Logf("killing tunnel client %d left by %s", p.pid, ref.Name)
				p.kill(time.Second)
				p.close()
			}
		}
	}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	nodeKey, _ := identity.GenerateKey(rand.Reader)
	_, gw := gatewayServer(t, nodeKey.Public())
	workloadtest.Run(t, workloadtest.Harness{
		New: func(t *testing.T) workload.Manager { return newManager(t, nodeKey, t.TempDir()) },
		Reopen: func(t *testing.T, m workload.Manager) workload.Manager {
			dir := m.(*Manager).cfg.DataDir
			m.Close()
			return newManager(t, nodeKey, dir)
		},
		Valid: func(t *testing.T, name string) (workload.Deployment, spec.Workload) {
			d := workload.Deployment{ID: 9, Generation: 1, Owner: 2, Siblings: loopSiblings{}}
			return d, gatewayWorkload(t, name, strings.ReplaceAll(name, "_", "-"), 8080, gw)
		},
		Change: func(t *testing.T, w spec.Workload) spec.Workload {
			var c spec.GatewayNameConfig
			if err := w.DecodeConfig(&c); err != nil {
				t.Fatal(err)
			}
			c.Port++
			if err := w.SetConfig(c); err != nil {
				t.Fatal(err)
			}
			return w
		},
		Invalid: func(t *testing.T, name string) spec.Workload {
			w := gatewayWorkload(t, name, "x", 80, gw)
			w.SetConfig(spec.GatewayNameConfig{Name: "x", Backend: "web", Port: 80}) // no gateway
			return w
		},
		Timeout: 30 * time.Second,
	})
}

// get sends one request for name through the gateway's tunnel server.
func get(srv *tunnel.Server, name string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := srv.Dial(ctx, name, tunnel.StreamMeta{Client: netip.MustParseAddrPort("203.0.113.9:5555"), Mode: tunnel.ModeHTTP})
	if err != nil {
		return "", err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		return "", err
	}
	body, err := io.ReadAll(resp.Body)
	return string(body), err
}

// clientPID is the pid of ref's tunnel client as its record names it.
func clientPID(t *testing.T, m *Manager, ref workload.Ref) int {
	t.Helper()
	rec, ok, err := m.load(ref)
	if err != nil || !ok || rec.Proc == nil {
		t.Fatalf("record of %s: %+v %v %v", ref.Name, rec, ok, err)
	}
	return rec.Proc.PID
}

// procStatus returns the fields of /proc/PID/status.
func procStatus(t *testing.T, pid int) map[string]string {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if k, v, ok := strings.Cut(line, ":"); ok {
			out[k] = strings.Join(strings.Fields(v), " ")
		}
	}
	return out
}

// waitRestarted waits until the workload counts want restarts and is
// Ready again, and returns the events seen meanwhile.
func waitRestarted(t *testing.T, m *Manager, d workload.Deployment, name string, want int) []workload.Event {
	t.Helper()
	var events []workload.Event
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := m.Observe(context.Background(), d, name)
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, st.Events...)
		if st.Restarts == want && st.State == workload.Ready {
			return events
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: %s (%s), %d restarts; want Ready after %d; events %v", name, st.State, st.Reason, st.Restarts, want, events)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func hasEvent(events []workload.Event, kind, text string) bool {
	for _, e := range events {
		if e.Kind == kind && strings.Contains(e.Reason, text) {
			return true
		}
	}
	return false
}

// TestTunnelClientIsItsOwnProcess: the tunnel of a gateway-name workload
// runs in a process of its own, not the agent's, with the fewest
// privileges it can have; the node key reaches it without touching the
// disk; a client that is killed is started again; a client outlives the
// agent and the next agent adopts it; Deprovision ends it.
func TestTunnelClientIsItsOwnProcess(t *testing.T) {
	t.Parallel()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hi from the backend")
	}))
	defer backend.Close()
	port := netip.MustParseAddrPort(strings.TrimPrefix(backend.URL, "http://")).Port()
	nodeKey, _ := identity.GenerateKey(rand.Reader)
	srv, gw, tunnels := countingGateway(t, nodeKey.Public())
	dir := t.TempDir()
	m := newManager(t, nodeKey, dir)
	d := workload.Deployment{ID: 4, Generation: 1, Owner: 2, Siblings: loopSiblings{}}
	ref := workload.Ref{Deployment: 4, Name: "site"}
	if err := m.Provision(context.Background(), d, gatewayWorkload(t, "site", "shop", port, gw)); err != nil {
		t.Fatal(err)
	}
	workloadtest.WaitReady(t, m, d, "site", 30*time.Second)
	if body, err := get(srv, "shop"); err != nil || body != "hi from the backend" {
		t.Fatalf("through the tunnel: %q %v", body, err)
	}

	pid := clientPID(t, m, ref)
	ps := procStatus(t, pid)
	if pid == os.Getpid() || ps["PPid"] != strconv.Itoa(os.Getpid()) {
		t.Fatalf("tunnel client pid %d, parent %s; the agent is %d", pid, ps["PPid"], os.Getpid())
	}
	if ps["NoNewPrivs"] != "1" {
		t.Errorf("tunnel client may gain privileges: NoNewPrivs %s", ps["NoNewPrivs"])
	}
	// The agent's own threads keep their privileges (the forking thread,
	// which set no_new_privs, ended with the fork).
	agentThreads := func() (flagged int) {
		tasks, _ := filepath.Glob("/proc/self/task/*/status")
		for _, st := range tasks {
			if b, err := os.ReadFile(st); err == nil && bytes.Contains(b, []byte("NoNewPrivs:\t1")) {
				flagged++
			}
		}
		return flagged
	}
	for deadline := time.Now().Add(5 * time.Second); agentThreads() > 0; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d threads of the agent run with no_new_privs", agentThreads())
		}
	}
	if os.Geteuid() == 0 {
		if want := "65534 65534 65534 65534"; ps["Uid"] != want || ps["Gid"] != want || ps["Groups"] != "" {
			t.Errorf("tunnel client runs as Uid %q Gid %q Groups %q, want nobody with no groups", ps["Uid"], ps["Gid"], ps["Groups"])
		}
		if ps["CapEff"] != "0000000000000000" || ps["CapPrm"] != "0000000000000000" {
			t.Errorf("tunnel client has capabilities: effective %s permitted %s", ps["CapEff"], ps["CapPrm"])
		}
	}
	seed := nodeKey.Seed()
	filepath.Walk(dir, func(path string, fi os.FileInfo, err error) error {
		if err == nil && fi.Mode().IsRegular() {
			b, _ := os.ReadFile(path)
			if bytes.Contains(b, seed) || bytes.Contains(b, []byte(hex.EncodeToString(seed))) {
				t.Errorf("%s holds the node key", path)
			}
		}
		return nil
	})

	// Killed, the client is started again and serves again.
	syscall.Kill(pid, syscall.SIGKILL)
	events := waitRestarted(t, m, d, "site", 1)
	if !hasEvent(events, eventlog.KindRestarted, "signal killed") {
		t.Errorf("no restart event naming the kill: %v", events)
	}
	pid2 := clientPID(t, m, ref)
	if pid2 == pid {
		t.Fatal("same pid after the restart")
	}
	if body, err := get(srv, "shop"); err != nil || body != "hi from the backend" {
		t.Fatalf("after the restart: %q %v", body, err)
	}

	// The agent stops; the client keeps serving; the next agent adopts it.
	m.Close()
	if body, err := get(srv, "shop"); err != nil || body != "hi from the backend" {
		t.Fatalf("with no agent: %q %v", body, err)
	}
	m2 := newManager(t, nodeKey, dir)
	if st, err := m2.Observe(context.Background(), d, "site"); err != nil || st.State != workload.Pending {
		t.Fatalf("before adoption: %+v %v", st, err)
	}
	if err := m2.Provision(context.Background(), d, gatewayWorkload(t, "site", "shop", port, gw)); err != nil {
		t.Fatal(err)
	}
	st := workloadtest.WaitReady(t, m2, d, "site", 30*time.Second)
	if got := clientPID(t, m2, ref); got != pid2 || st.Restarts != 1 {
		t.Fatalf("after adoption: pid %d (was %d), %d restarts (want 1)", got, pid2, st.Restarts)
	}
	if !hasEvent(st.Events, eventlog.KindProvisioning, fmt.Sprintf("adopted the running tunnel client (pid %d)", pid2)) {
		t.Errorf("no adoption event: %v", st.Events)
	}
	syscall.Kill(pid2, syscall.SIGKILL) // an adopted client is healed too
	waitRestarted(t, m2, d, "site", 2)
	pid3 := clientPID(t, m2, ref)

	// Deprovision ends the client, which closes its tunnel on its way
	// out. (The tunnels of the killed clients stay at the gateway until
	// their heartbeats are missed.)
	live := tunnels.of("shop")
	if err := m2.Deprovision(context.Background(), d, "site"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat("/proc/" + strconv.Itoa(pid3)); err == nil {
		t.Errorf("tunnel client %d still exists after Deprovision", pid3)
	}
	deadline := time.Now().Add(10 * time.Second)
	for tunnels.of("shop") != live-1 {
		if time.Now().After(deadline) {
			t.Fatalf("the gateway has %d tunnels for the name after Deprovision, had %d", tunnels.of("shop"), live)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if refs, _ := m2.List(context.Background()); len(refs) != 0 {
		t.Fatalf("records left: %v", refs)
	}
}

// A node whose key the gateway does not authorize stays unready, with the
// gateway's reason.
func TestRefusedNodeSaysWhy(t *testing.T) {
	t.Parallel()
	authorized, _ := identity.GenerateKey(rand.Reader)
	other, _ := identity.GenerateKey(rand.Reader)
	_, gw := gatewayServer(t, authorized.Public())
	m := newManager(t, other, t.TempDir())
	d := workload.Deployment{ID: 4, Generation: 1, Owner: 2, Siblings: loopSiblings{}}
	if err := m.Provision(context.Background(), d, gatewayWorkload(t, "site", "shop", 80, gw)); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		st, err := m.Observe(context.Background(), d, "site")
		if err != nil {
			t.Fatal(err)
		}
		if st.State == workload.Ready {
			t.Fatal("an unauthorized node's tunnel serves the name")
		}
		if strings.Contains(st.Reason, "not authorized") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no refusal reason: %s %q", st.State, st.Reason)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := m.Deprovision(context.Background(), d, "site"); err != nil {
		t.Fatal(err)
	}
}
