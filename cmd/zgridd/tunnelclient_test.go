package main

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/tunnel"
	"github.com/zerogrid/zerogrid/internal/workload"
	"github.com/zerogrid/zerogrid/internal/workload/gatewayname"
	"github.com/zerogrid/zerogrid/internal/workload/workloadtest"
)

type allowOne identity.PublicKey

func (a allowOne) Authorize(_ context.Context, name string, key identity.PublicKey) error {
	if key != identity.PublicKey(a) {
		return fmt.Errorf("%w: %s for %s", tunnel.ErrNotAuthorized, key, name)
	}
	return nil
}

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

// TestTunnelClientSubcommand: `zgridd tunnel-client` is what the node's
// gateway-name manager runs, one process per workload, and through it the
// workload's tunnel comes up; run by hand, it says it is not meant to be.
func TestTunnelClientSubcommand(t *testing.T) {
	bin := buildZgridd(t)
	out, err := exec.Command(bin, "tunnel-client").CombinedOutput()
	if err == nil || !strings.Contains(string(out), "not run by hand") {
		t.Fatalf("tunnel-client by hand: %v\n%s", err, out)
	}

	nodeKey, _ := identity.GenerateKey(rand.Reader)
	gwKey, _ := identity.GenerateKey(rand.Reader)
	srv, err := tunnel.NewServer(tunnel.ServerConfig{Key: gwKey, Authorizer: allowOne(nodeKey.Public())})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.ServeTLS(context.Background(), l) // QUIC gets no answer: the client falls back to TCP
	t.Cleanup(func() { srv.Close() })

	m, err := gatewayname.New(gatewayname.Config{DataDir: t.TempDir(), Log: slog.New(slog.DiscardHandler), Clock: workload.SystemClock{},
		Key: nodeKey, Command: []string{bin, "tunnel-client"}})
	if err != nil {
		t.Fatal(err)
	}
	defer m.Close()
	d := workload.Deployment{ID: 3, Generation: 1, Owner: 1, Siblings: loopSiblings{}}
	w := spec.Workload{Name: "site", Type: spec.TypeGatewayName}
	if err := w.SetConfig(spec.GatewayNameConfig{Name: "web", Backend: "app", Port: 8080,
		Gateways: []spec.GatewayRef{{Address: l.Addr().String(), Key: gwKey.Public()}}}); err != nil {
		t.Fatal(err)
	}
	if err := m.Provision(context.Background(), d, w); err != nil {
		t.Fatal(err)
	}
	defer m.Deprovision(context.Background(), d, "site")
	workloadtest.WaitReady(t, m, d, "site", 30*time.Second)
	if _, ok := srv.Mode("web"); !ok {
		t.Fatal("the gateway does not serve the name")
	}
	// The tunnel is a zgridd tunnel-client process, a child of this one.
	found := false
	procs, _ := os.ReadDir("/proc")
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile("/proc/" + p.Name() + "/cmdline")
		stat, _ := os.ReadFile("/proc/" + p.Name() + "/stat")
		if string(cmdline) == bin+"\x00tunnel-client\x00" && strings.Contains(string(stat), ") S "+strconv.Itoa(os.Getpid())+" ") && pid != os.Getpid() {
			found = true
		}
	}
	if !found {
		t.Fatal("no zgridd tunnel-client process among this process's children")
	}
	if err := m.Deprovision(context.Background(), d, "site"); err != nil {
		t.Fatal(err)
	}
}
