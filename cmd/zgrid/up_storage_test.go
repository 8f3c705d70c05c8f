package main

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/grid"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
	"github.com/zerogrid/zerogrid/internal/workload/zdb"
)

// zdbSpec is one contract's two zdb workloads.
const zdbSpec = `version: 1
secrets:
  ZDB_PASSWORD: {env: ZDB_PASSWORD}
workloads:
  - {name: db1, type: zdb, size: 256MiB, password: ZDB_PASSWORD}
  - {name: db2, type: zdb, size: 256MiB, password: ZDB_PASSWORD}
`

// deployFile deploys the YAML text spec on node and waits for Ready.
func deployFile(t *testing.T, gf *grid.File, c *client.Client, text string, node uint64) uint64 {
	t.Helper()
	f := filepath.Join(t.TempDir(), "spec.yaml")
	if err := os.WriteFile(f, []byte(text), 0o600); err != nil {
		t.Fatal(err)
	}
	out, errb, err := run(t, "--ledger", gf.Ledger, "--key", gf.UserKey, "deploy", "-f", f, "--node", strconv.FormatUint(node, 10))
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, errb)
	}
	id, err := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
	if err != nil {
		t.Fatalf("deploy printed %q", out)
	}
	eventually(t, 90*time.Second, fmt.Sprintf("contract %d ready", id), func() (*ledger.Contract, bool) {
		con, err := c.Contract(t.Context(), id)
		return con, err == nil && con.State == ledger.StateReady
	})
	return id
}

// zdbStatus is `zgrid status ID -o json`'s zdbs.
func zdbStatus(t *testing.T, gf *grid.File, id uint64) []zdb.Endpoint {
	t.Helper()
	out, errb, err := run(t, "--ledger", gf.Ledger, "--key", gf.UserKey, "status", strconv.FormatUint(id, 10), "-o", "json")
	if err != nil {
		t.Fatalf("status: %v\n%s", err, errb)
	}
	var st struct {
		ZDBs []zdb.Endpoint `json:"zdbs"`
	}
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status -o json: %v: %s", err, out)
	}
	return st.ZDBs
}

// redisIn runs redis-cli in network namespace ns (a path under
// /run/netns) against addr ([IPv6]:port or IPv4:port) with the commands
// on its standard input, and gives up after 5 s.
func redisIn(ns, addr, commands string) (string, error) {
	host, port := addr[:strings.LastIndex(addr, ":")], addr[strings.LastIndex(addr, ":")+1:]
	host = strings.Trim(host, "[]")
	cmd := exec.Command("timeout", "5", "nsenter", "--net="+ns, "redis-cli", "-h", host, "-p", port)
	cmd.Stdin = strings.NewReader(commands)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func deployZDBs(t *testing.T, gf *grid.File, c *client.Client) (ids []uint64, eps []zdb.Endpoint) {
	t.Helper()
	for _, n := range gf.Nodes {
		id := deployFile(t, gf, c, zdbSpec, n.ID)
		ids = append(ids, id)
		got := zdbStatus(t, gf, id)
		if len(got) != 2 || got[0].Name != "db1" || got[1].Namespace != zdb.NamespaceName(id, "db2") || !strings.HasPrefix(got[0].Address, "[fd") {
			t.Fatalf("contract %d: zdbs %+v", id, got)
		}
		eps = append(eps, got...)
	}
	return ids, eps
}

// TestUpZDB runs a three-node grid on the overlay, deploys two zdb
// workloads on each node, and checks that each is served on its node's
// overlay address to the password alone, from another node; that the
// host's loopback and a container of the node (even one that routes to
// the node's overlay address) do not reach it; and that cancelling the
// contract deletes the namespaces' data.
func TestUpZDB(t *testing.T) {
	skipUnlessGrid(t, "redis-cli", "nsenter", "timeout", "ping")
	dir := t.TempDir()
	gf, stop := upGridNodes(t, dir, 3)
	pass, err := gf.Passphrase()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("ZGRID_PASSPHRASE", string(pass))
	t.Setenv("ZDB_PASSWORD", "zdb-test-password")
	c, err := client.Dial(t.Context(), gf.Ledger, client.Options{TrustFile: gf.Trust})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ids, eps := deployZDBs(t, gf, c)
	node := func(i int) string { return "/run/netns/" + gf.Nodes[i].Namespace }

	// Node 2 writes into node 1's db1 over the overlay; node 3 reads it.
	ep := eps[0]
	out := eventually(t, 30*time.Second, "SET over the overlay", noErr(func() (string, error) {
		out, err := redisIn(node(1), ep.Address, "SELECT "+ep.Namespace+" zdb-test-password\nSET hello world\n")
		if err == nil && strings.Count(out, "OK") < 1 {
			err = fmt.Errorf("no OK")
		}
		return out, err
	}))
	t.Logf("node 2 → node 1's zdb: %q", out)
	if got, err := redisIn(node(2), ep.Address, "SELECT "+ep.Namespace+" zdb-test-password\nGET hello\n"); err != nil || !strings.Contains(got, "world") {
		t.Fatalf("node 3 GET from node 1's zdb: %q %v", got, err)
	}
	if got, _ := redisIn(node(1), ep.Address, "SELECT "+ep.Namespace+" wrong\nGET hello\n"); strings.Contains(got, "world") {
		t.Fatalf("a wrong password read the namespace: %q", got)
	}
	if got, _ := redisIn(node(1), ep.Address, "SELECT "+ep.Namespace+"\nGET hello\n"); strings.Contains(got, "world") {
		t.Fatalf("no password read the namespace: %q", got)
	}

	// Not on node 1's loopback.
	for _, lo := range []string{"127.0.0.1:9900", "[::1]:9900"} {
		if got, err := redisIn(node(0), lo, "PING\n"); err == nil && strings.Contains(got, "PONG") {
			t.Errorf("zdb answers on node 1's loopback %s: %q", lo, got)
		}
	}

	// Not from a container of node 1, even one that routes to the node's
	// overlay address: ping gets through (the route works), zdb does not.
	image := exampleImage(t, gf)
	deployFile(t, gf, c, fmt.Sprintf(`version: 1
workloads:
  - {name: other, type: network}
  - {name: web, type: container, image: %s, cpu: 100m, memory: 64MiB, ports: [8080]}
`, image), gf.Nodes[0].ID)
	sum := sha256.Sum256([]byte(filepath.Join(dir, "nodes", "node1", "data")))
	ctrNS := "zg-" + hex.EncodeToString(sum[:3]) + "-0"
	ovAddr := strings.Trim(ep.Address[:strings.LastIndex(ep.Address, ":")], "[]")
	if out, err := exec.Command("ip", "-n", ctrNS, "-6", "route", "add", ovAddr+"/128", "via", "fe80::1", "dev", "eth0").CombinedOutput(); err != nil {
		t.Fatalf("route to the node's overlay address: %v: %s", err, out)
	}
	eventually(t, 10*time.Second, "the container pings the node's overlay address", noErr(func() (string, error) {
		out, err := exec.Command("nsenter", "--net=/run/netns/"+ctrNS, "ping", "-6", "-c1", "-W1", ovAddr).CombinedOutput()
		return string(out), err
	}))
	if got, err := redisIn("/run/netns/"+ctrNS, ep.Address, "PING\n"); err == nil && strings.Contains(got, "PONG") {
		t.Fatalf("a container reached the node's zdb: %q", got)
	}

	// Cancel deletes the data.
	nsDir := filepath.Join(dir, "nodes", "node1", "data", "workload", "v1", "zdb", "server", ep.Namespace)
	if _, err := os.Stat(nsDir); err != nil {
		t.Fatalf("namespace directory: %v", err)
	}
	if _, errb, err := run(t, "--ledger", gf.Ledger, "--key", gf.UserKey, "cancel", strconv.FormatUint(ids[0], 10)); err != nil {
		t.Fatalf("cancel: %v\n%s", err, errb)
	}
	eventually(t, 30*time.Second, "namespace data deleted", noErr(func() (string, error) {
		_, err := os.Stat(nsDir)
		if os.IsNotExist(err) {
			return "", nil
		}
		return nsDir, fmt.Errorf("still there")
	}))
	c.Close()
	stop()
	assertGridGone(t, dir, gf)
}

// noErr adapts f to eventually: done when f returns no error.
func noErr(f func() (string, error)) func() (string, bool) {
	return func() (string, bool) {
		s, err := f()
		if err != nil {
			return s + ": " + err.Error(), false
		}
		return s, true
	}
}
