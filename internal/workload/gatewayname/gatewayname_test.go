package gatewayname

import (
	"bufio"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/tunnel"
	"github.com/zerogrid/zerogrid/internal/workload"
	"github.com/zerogrid/zerogrid/internal/workload/workloadtest"
)

// allow authorizes one key for every name.
type allow identity.PublicKey

func (a allow) Authorize(_ context.Context, name string, key identity.PublicKey) error {
	if key != identity.PublicKey(a) {
		return fmt.Errorf("key %s is not authorized for name %s", key, name)
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

// gatewayServer runs a real tunnel server (QUIC and TLS on one port) that
// authorizes key.
func gatewayServer(t *testing.T, key identity.PublicKey) (*tunnel.Server, spec.GatewayRef) {
	gk, _ := identity.GenerateKey(rand.Reader)
	srv, err := tunnel.NewServer(tunnel.ServerConfig{Key: gk, Authorizer: allow(key)})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(func() { cancel(); pc.Close(); l.Close() })
	go srv.ServeQUIC(ctx, pc)
	go srv.ServeTLS(ctx, l)
	return srv, spec.GatewayRef{Address: l.Addr().String(), Key: gk.Public()}
}

func gatewayWorkload(t *testing.T, name string, port uint16, gw spec.GatewayRef) spec.Workload {
	w := spec.Workload{Name: name, Type: spec.TypeGatewayName}
	if err := w.SetConfig(spec.GatewayNameConfig{Name: "shop", Backend: "web", Port: port, Gateways: []spec.GatewayRef{gw}}); err != nil {
		t.Fatal(err)
	}
	return w
}

func newManager(t *testing.T, key identity.PrivateKey, dir string) *Manager {
	log := slog.New(slog.DiscardHandler)
	m, err := New(Config{DataDir: dir, Log: log, Clock: workload.SystemClock{}, Open: NewTunnel(key, log)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { m.Close() })
	return m
}

// A gateway-name workload opens a tunnel to its gateway, which then
// carries a visitor's request to the backend container's port; a node
// whose key the gateway does not authorize stays unready with the reason.
func TestServesThroughGateway(t *testing.T) {
	t.Parallel()
	backend := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprint(w, "hi from the backend")
	}))
	defer backend.Close()
	port := netip.MustParseAddrPort(strings.TrimPrefix(backend.URL, "http://")).Port()
	nodeKey, _ := identity.GenerateKey(rand.Reader)
	srv, gw := gatewayServer(t, nodeKey.Public())
	m := newManager(t, nodeKey, t.TempDir())
	d := workload.Deployment{ID: 4, Generation: 1, Owner: 2, Siblings: loopSiblings{}}
	w := gatewayWorkload(t, "site", port, gw)
	if err := m.Provision(context.Background(), d, w); err != nil {
		t.Fatal(err)
	}
	st := workloadtest.WaitReady(t, m, d, "site", 20*time.Second)
	if st.State != workload.Ready {
		t.Fatalf("state %s: %s", st.State, st.Reason)
	}
	if mode, ok := srv.Mode("shop"); !ok || mode != tunnel.ModeHTTP {
		t.Fatalf("gateway sees mode %v, %v", mode, ok)
	}
	c, err := srv.Dial(context.Background(), "shop", tunnel.StreamMeta{Client: netip.MustParseAddrPort("203.0.113.9:5555"), Mode: tunnel.ModeHTTP})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: shop.example\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	if string(body) != "hi from the backend" {
		t.Fatalf("through the tunnel: %s %q", resp.Status, body)
	}

	// Another node's key is refused, and the workload says why.
	other, _ := identity.GenerateKey(rand.Reader)
	m2 := newManager(t, other, t.TempDir())
	if err := m2.Provision(context.Background(), d, w); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(15 * time.Second)
	for {
		st, err := m2.Observe(context.Background(), d, "site")
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

	// Deprovision closes the tunnel: the gateway no longer has the name.
	if err := m2.Deprovision(context.Background(), d, "site"); err != nil {
		t.Fatal(err)
	}
	if err := m.Deprovision(context.Background(), d, "site"); err != nil {
		t.Fatal(err)
	}
	deadline = time.Now().Add(10 * time.Second)
	for {
		if _, ok := srv.Mode("shop"); !ok {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the gateway still serves the name after deprovision")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if refs, _ := m.List(context.Background()); len(refs) != 0 {
		t.Fatalf("records left: %v", refs)
	}
}
