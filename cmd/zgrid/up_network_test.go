package main

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/grid"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
	"github.com/zerogrid/zerogrid/internal/workload/network"
)

// TestUpNetworkAcrossNodes runs a two-node grid whose nodes are joined by
// the overlay, deploys containers of one owner's network "lan" on both
// nodes and one of network "other" on the second, and checks from inside
// the first container's namespace that the second node's "lan" member
// answers over the network and the "other" member does not.
func TestUpNetworkAcrossNodes(t *testing.T) {
	skipUnlessGrid(t, "curl")
	dir := t.TempDir()
	gf, _ := upGrid(t, dir)
	pass, err := gf.Passphrase()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("ZGRID_PASSPHRASE", string(pass))
	image := exampleImage(t, gf)
	c, err := client.Dial(t.Context(), gf.Ledger, client.Options{TrustFile: gf.Trust})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	type member struct {
		id, node uint64
		addr     netip.Addr
	}
	deploy := func(node grid.Node, net string) member {
		spec := fmt.Sprintf(`version: 1
workloads:
  - {name: %s, type: network}
  - name: web
    type: container
    image: %s
    cpu: 100m
    memory: 64MiB
    ports: [8080]
    mounts: [{volume: data, path: /data}]
  - {name: data, type: volume, size: 16MiB}
`, net, image)
		f := filepath.Join(t.TempDir(), "spec.yaml")
		if err := os.WriteFile(f, []byte(spec), 0o600); err != nil {
			t.Fatal(err)
		}
		out, errb, err := run(t, "--ledger", gf.Ledger, "--trust", gf.Trust, "--key", gf.UserKey, "deploy", "-f", f, "--node", strconv.FormatUint(node.ID, 10))
		if err != nil {
			t.Fatalf("deploy: %v\n%s", err, errb)
		}
		id, err := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
		if err != nil {
			t.Fatalf("deploy printed %q", out)
		}
		con := eventually(t, 60*time.Second, "contract ready", func() (*ledger.Contract, bool) {
			con, err := c.Contract(t.Context(), id)
			return con, err == nil && con.State == ledger.StateReady
		})
		prefix, _ := network.Prefix(gf.ChainID, con.Owner, net)
		sub, err := network.NodeSubnet(prefix, node.ID)
		if err != nil {
			t.Fatal(err)
		}
		addr, _ := network.MemberAddr(sub, id, "web")
		return member{id: id, node: node.ID, addr: addr}
	}
	a := deploy(gf.Nodes[0], "lan")
	b := deploy(gf.Nodes[1], "lan")
	other := deploy(gf.Nodes[1], "other")
	// The first container of node 1 has container namespace slot 0.
	sum := sha256.Sum256([]byte(filepath.Join(dir, "nodes", "node1", "data")))
	ctrNS := "/run/netns/zg-" + hex.EncodeToString(sum[:3]) + "-0"
	get := func(to netip.Addr) (string, error) {
		out, err := exec.Command("nsenter", "--net="+ctrNS, "curl", "-sS", "-m", "2", fmt.Sprintf("http://[%s]:8080/", to)).CombinedOutput()
		return string(out), err
	}
	body := eventually(t, 40*time.Second, "node 2's lan member over the overlay", func() (string, bool) {
		out, err := get(b.addr)
		return out, err == nil && strings.Contains(out, "hello")
	})
	t.Logf("node 1's container (%s) got from node 2's (%s): %q", a.addr, b.addr, body)
	// Even with a route to network other in the container's namespace (a
	// container that is root there could add one), the node stops it.
	con, err := c.Contract(t.Context(), other.id)
	if err != nil {
		t.Fatal(err)
	}
	otherNet, _ := network.Prefix(gf.ChainID, con.Owner, "other")
	if out, err := exec.Command("ip", "-n", filepath.Base(ctrNS), "-6", "route", "add", otherNet.String(), "via", network.GatewayAddr.String(), "dev", "eth0").CombinedOutput(); err != nil {
		t.Fatalf("add a route to network other: %v: %s", err, out)
	}
	if out, err := get(other.addr); err == nil {
		t.Fatalf("a member of network lan reached network other's container: %q", out)
	}
}

// exampleImage returns the pinned image reference grid up wrote into its
// example spec.
func exampleImage(t *testing.T, gf *grid.File) string {
	b, err := os.ReadFile(gf.Example)
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile(`(?m)^\s*image:\s*(\S+)`).FindSubmatch(b)
	if m == nil {
		t.Fatalf("no image in %s", gf.Example)
	}
	return string(m[1])
}
