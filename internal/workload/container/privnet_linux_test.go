package container

import (
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
	privnet "github.com/zerogrid/zerogrid/internal/workload/network"
	"github.com/zerogrid/zerogrid/internal/workload/workloadtest"
)

const privnetChild = "ZG_PRIVNET_CHILD"

// TestPrivateNetwork runs real containers on one node that join private
// networks: two deployments of one owner declaring network "lan" share
// it; another owner's "lan" is another network. The node is a network
// namespace of its own, so the test changes nothing in the host's: the
// test re-runs itself inside it.
func TestPrivateNetwork(t *testing.T) {
	needContainers(t)
	if _, err := privnet.LookTools(); err != nil {
		t.Skipf("private networks need ip and nft: %v", err)
	}
	for _, tool := range []string{"curl", "nsenter"} {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s missing", tool)
		}
	}
	if os.Getenv(privnetChild) == "" {
		t.Parallel()
		ns := fmt.Sprintf("zgpn%d", os.Getpid()%100000)
		if out, err := exec.Command("ip", "netns", "add", ns).CombinedOutput(); err != nil {
			t.Fatalf("ip netns add: %v: %s", err, out)
		}
		defer exec.Command("ip", "netns", "del", ns).Run()
		if out, err := exec.Command("ip", "-n", ns, "link", "set", "lo", "up").CombinedOutput(); err != nil {
			t.Fatalf("lo up: %v: %s", err, out)
		}
		// nsenter, not ip netns exec: that remounts /sys, hiding the
		// cgroup controllers containers need.
		cmd := exec.Command("nsenter", "--net=/run/netns/"+ns, os.Args[0], "-test.run", "^TestPrivateNetwork$", "-test.v", "-test.count=1")
		cmd.Env = append(os.Environ(), privnetChild+"=1")
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "--- PASS: TestPrivateNetwork") {
			t.Fatalf("in namespace %s: %v\n%s", ns, err, out)
		}
		t.Logf("in namespace %s:\n%s", ns, out)
		return
	}
	privateNetwork(t)
}

func privateNetwork(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	tools, _ := privnet.LookTools()
	nets, err := privnet.New(privnet.Config{DataDir: e.cfg.DataDir, Log: e.cfg.Log, Clock: workload.SystemClock{},
		Chain: "test-chain", NodeID: 3, Tools: tools})
	if err != nil {
		t.Fatal(err)
	}
	lan := spec.Workload{Name: "lan", Type: spec.TypeNetwork}
	type member struct {
		d    workload.Deployment
		addr netip.Addr
		ns   string
	}
	var ms []member
	for i, owner := range []uint64{7, 7, 8} {
		id := uint64(i + 1)
		web := containerWorkload(t, "web", e.ref, nil)
		d := workload.Deployment{ID: id, Generation: 1, Owner: owner}
		s := &spec.Spec{Version: spec.Version, Workloads: []spec.Workload{lan, web}}
		d.Siblings = workload.NewSiblings(d, s, map[string]workload.Manager{spec.TypeNetwork: nets, spec.TypeContainer: e.ctrs})
		if err := e.ctrs.Provision(ctx, d, web); err == nil {
			t.Fatal("a container joined its network before the network was provisioned")
		}
		if err := nets.Provision(ctx, d, lan); err != nil {
			t.Fatal(err)
		}
		if err := e.ctrs.Provision(ctx, d, web); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			_ = e.ctrs.Deprovision(context.Background(), d, "web")
			_ = nets.Deprovision(context.Background(), d, "lan")
		})
		workloadtest.WaitReady(t, e.ctrs, d, "web", 20*time.Second)
		n, err := nets.Network(ctx, d, "lan")
		if err != nil {
			t.Fatal(err)
		}
		addr, _ := privnet.MemberAddr(n.Subnet, id, "web")
		rec, _, _ := e.ctrs.layout.load(workload.Ref{Deployment: id, Name: "web"})
		ms = append(ms, member{d, addr, e.ctrs.net.netns(rec.Slot)})
	}
	reach := func(from, to member) bool {
		url := fmt.Sprintf("http://[%s]:8080/probe", to.addr)
		out, _ := exec.Command("ip", "netns", "exec", from.ns, "curl", "-6", "-s", "-o", "/dev/null", "-m", "2", "-w", "%{http_code}", url).Output()
		return string(out) == "200"
	}
	deadline := time.Now().Add(10 * time.Second)
	for !reach(ms[0], ms[1]) {
		if time.Now().After(deadline) {
			t.Fatalf("deployment 1 cannot reach deployment 2 (%s) over their network", ms[1].addr)
		}
		time.Sleep(200 * time.Millisecond)
	}
	if !reach(ms[1], ms[0]) {
		t.Fatal("deployment 2 cannot reach deployment 1")
	}
	if reach(ms[2], ms[0]) || reach(ms[0], ms[2]) {
		t.Fatal("another owner's network reached this one, or the other way")
	}
	collidingNetworks(t, e, nets)
}

// collidingNetworks: owner 8 names a network so that its /48 is owner 7's
// (a collision found by a birthday search over names; see the network
// package's tests). Its network is refused on this node, so its container
// never joins: it waits for a network that never comes.
func collidingNetworks(t *testing.T, e *env, nets *privnet.Manager) {
	ctx := context.Background()
	victim := spec.Workload{Name: "lan1w3vo", Type: spec.TypeNetwork}
	attacker := spec.Workload{Name: "net3xu0", Type: spec.TypeNetwork}
	pv, _ := privnet.Prefix("test-chain", 7, victim.Name)
	pa, _ := privnet.Prefix("test-chain", 8, attacker.Name)
	if pv != pa {
		t.Fatalf("the fixture does not collide: %s, %s", pv, pa)
	}
	dv := workload.Deployment{ID: 10, Generation: 1, Owner: 7}
	if err := nets.Provision(ctx, dv, victim); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = nets.Deprovision(context.Background(), dv, victim.Name) })
	web := containerWorkload(t, "web", e.ref, nil)
	da := workload.Deployment{ID: 11, Generation: 1, Owner: 8}
	da.Siblings = workload.NewSiblings(da, &spec.Spec{Version: spec.Version, Workloads: []spec.Workload{attacker, web}},
		map[string]workload.Manager{spec.TypeNetwork: nets, spec.TypeContainer: e.ctrs})
	if err := nets.Provision(ctx, da, attacker); !workload.IsPermanent(err) {
		t.Fatalf("a network with owner 7's prefix was provisioned for owner 8: %v", err)
	}
	if err := e.ctrs.Provision(ctx, da, web); !errors.Is(err, workload.ErrDependency) {
		t.Fatalf("the container of the refused network: %v, want it waiting for its network", err)
	}
}
