package network

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
	"github.com/zerogrid/zerogrid/internal/workload/workloadtest"
)

var nodeSeq atomic.Int32

// testNode returns tools that act on a fresh namespace of the test's.
func testNode(t *testing.T) Tools {
	t.Helper()
	tools := needRoot(t)
	ns := fmt.Sprintf("zgnm%d-%d", os.Getpid()%100000, nodeSeq.Add(1))
	sh(t, "ip", "netns", "add", ns)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
	tools.Netns = ns
	return tools
}

func newManager(t *testing.T, tools Tools, dir string) *Manager {
	m, err := New(Config{DataDir: dir, Log: slog.New(slog.DiscardHandler), Clock: workload.SystemClock{},
		Chain: "test", NodeID: 5, Tools: tools})
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestConformance(t *testing.T) {
	workloadtest.Run(t, workloadtest.Harness{
		New: func(t *testing.T) workload.Manager { return newManager(t, testNode(t), t.TempDir()) },
		Reopen: func(t *testing.T, m workload.Manager) workload.Manager {
			old := m.(*Manager)
			return newManager(t, old.cfg.Tools, old.cfg.DataDir)
		},
		Valid: func(t *testing.T, name string) (workload.Deployment, spec.Workload) {
			return workload.Deployment{ID: 1, Generation: 1, Owner: 9}, spec.Workload{Name: name, Type: spec.TypeNetwork}
		},
		Change: func(t *testing.T, w spec.Workload) spec.Workload { return w }, // a network has nothing to change
		Invalid: func(t *testing.T, name string) spec.Workload {
			return spec.Workload{Name: name, Type: spec.TypeNetwork, Config: []byte{0xff}}
		},
		Timeout: 5 * time.Second,
	})
}

// The node keeps a network's routes while any deployment on it uses the
// network, and drops them with the last one.
func TestRoutesFollowUse(t *testing.T) {
	tools := testNode(t)
	m := newManager(t, tools, t.TempDir())
	ctx := t.Context()
	lan := spec.Workload{Name: "lan", Type: spec.TypeNetwork}
	d1 := workload.Deployment{ID: 1, Generation: 1, Owner: 9}
	d2 := workload.Deployment{ID: 2, Generation: 1, Owner: 9}
	for _, d := range []workload.Deployment{d1, d2} {
		if err := m.Provision(ctx, d, lan); err != nil {
			t.Fatal(err)
		}
	}
	n, err := m.Network(ctx, d1, "lan")
	if err != nil {
		t.Fatal(err)
	}
	if n2, _ := m.Network(ctx, d2, "lan"); n2 != n {
		t.Fatalf("one owner's network differs between deployments: %v %v", n, n2)
	}
	routes := func() string {
		out, _ := exec.Command("ip", "-n", tools.Netns, "-6", "route", "show").CombinedOutput()
		return string(out)
	}
	if !strings.Contains(routes(), "unreachable "+n.Subnet.String()) {
		t.Fatalf("no unreachable route for the node's subnet:\n%s", routes())
	}
	if err := m.Deprovision(ctx, d1, "lan"); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(routes(), n.Subnet.String()) {
		t.Fatal("route removed while deployment 2 still uses the network")
	}
	if err := m.Deprovision(ctx, d2, "lan"); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(routes(), n.Subnet.String()) {
		t.Fatalf("route left after the last user:\n%s", routes())
	}
}

// A network whose prefix collides with another owner's network already on
// the node is refused, before the node accepts its contract (Admit) and
// when it is provisioned anyway; the first keeps its prefix, and another
// deployment of the same network still joins it.
func TestRefusesCollidingPrefix(t *testing.T) {
	tools := testNode(t)
	m, err := New(Config{DataDir: t.TempDir(), Log: slog.New(slog.DiscardHandler), Clock: workload.SystemClock{},
		Chain: collidingChain, NodeID: 5, Tools: tools})
	if err != nil {
		t.Fatal(err)
	}
	ctx := t.Context()
	victim, attacker := collidingNets[0], collidingNets[1]
	dv := workload.Deployment{ID: 1, Generation: 1, Owner: victim.twin}
	da := workload.Deployment{ID: 2, Generation: 1, Owner: attacker.twin}
	wv := spec.Workload{Name: victim.name, Type: spec.TypeNetwork}
	wa := spec.Workload{Name: attacker.name, Type: spec.TypeNetwork}
	if err := m.Admit(ctx, dv, wv); err != nil {
		t.Fatalf("admit the first network: %v", err)
	}
	if err := m.Provision(ctx, dv, wv); err != nil {
		t.Fatal(err)
	}
	for what, err := range map[string]error{"Admit": m.Admit(ctx, da, wa), "Provision": m.Provision(ctx, da, wa)} {
		if !workload.IsPermanent(err) || !strings.Contains(workload.Reason(err), "prefix") {
			t.Errorf("%s of a network with another owner's prefix: %v, want a permanent refusal naming the prefix", what, err)
		}
	}
	if _, err := m.Network(ctx, da, attacker.name); !errors.Is(err, workload.ErrNotFound) {
		t.Errorf("the refused network has a record: %v", err)
	}
	again := workload.Deployment{ID: 3, Generation: 1, Owner: victim.twin}
	if err := m.Admit(ctx, again, wv); err != nil {
		t.Fatalf("admit the same network for another deployment: %v", err)
	}
	if err := m.Provision(ctx, again, wv); err != nil {
		t.Fatal(err)
	}
	if err := m.Provision(ctx, dv, wv); err != nil {
		t.Fatalf("provision the first network again: %v", err)
	}
}
