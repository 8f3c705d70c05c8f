package main

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/grid"
	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
	"github.com/zerogrid/zerogrid/internal/storage/catalog"
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
	out, errb, err := run(t, "--ledger", gf.Ledger, "--trust", gf.Trust, "--key", gf.UserKey, "deploy", "-f", f, "--node", strconv.FormatUint(node, 10))
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
	out, errb, err := run(t, "--ledger", gf.Ledger, "--trust", gf.Trust, "--key", gf.UserKey, "status", strconv.FormatUint(id, 10), "-o", "json")
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
	// The CLI's trusted ledger state is kept per ledger URL; a port an
	// earlier grid used must not carry that grid's state over.
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())
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

	// A store configuration from the contracts: every zdb, where status
	// says it is, its node as failure domain. (Creating the store needs a
	// machine on the overlay; this host is not one.)
	conf := filepath.Join(t.TempDir(), "store.yaml")
	var idList []string
	for _, id := range ids {
		idList = append(idList, strconv.FormatUint(id, 10))
	}
	_, errb, err := run(t, "--ledger", gf.Ledger, "--trust", gf.Trust, "--key", gf.UserKey, "store", "init", "--config", conf, "--from-contracts", strings.Join(idList, ","))
	if err == nil {
		t.Fatalf("store init from this host, off the overlay, succeeded")
	}
	cfg, lerr := catalog.LoadConfig(conf)
	if lerr != nil {
		t.Fatalf("store init --from-contracts wrote no usable config: %v (init said %v: %s)", lerr, err, errb)
	}
	if len(cfg.Backends) != 6 || cfg.K != 3 || cfg.M != 2 {
		t.Fatalf("config: %+v", cfg)
	}
	for i, b := range cfg.Backends {
		if b.Address != eps[i].Address || b.Namespace != eps[i].Namespace || b.Password != "zdb-test-password" || b.Domain != fmt.Sprintf("node%d", gf.Nodes[i/2].ID) {
			t.Errorf("backend %d: %+v, want %+v on node %d", i, b, eps[i], gf.Nodes[i/2].ID)
		}
	}

	// Cancel deletes the data.
	nsDir := filepath.Join(dir, "nodes", "node1", "data", "workload", "v1", "zdb", "server", ep.Namespace)
	if _, err := os.Stat(nsDir); err != nil {
		t.Fatalf("namespace directory: %v", err)
	}
	if _, errb, err := run(t, "--ledger", gf.Ledger, "--trust", gf.Trust, "--key", gf.UserKey, "cancel", strconv.FormatUint(ids[0], 10)); err != nil {
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

// firstContainerPID is the pid of the first container runc runs for node i
// (1-based) of the grid in dir.
func firstContainerPID(t *testing.T, dir string, i int) int {
	t.Helper()
	root := filepath.Join(dir, "nodes", "node"+strconv.Itoa(i), "run", "runc")
	out, err := exec.Command("runc", "--root", root, "list", "-q").Output()
	ids := strings.Fields(string(out))
	if err != nil || len(ids) == 0 {
		t.Fatalf("runc list: %v %q", err, out)
	}
	return containerPID(t, root, ids[0])
}

// sha256File hashes a file.
func sha256File(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// workloadState reads one workload's state and reason from zgrid status.
func workloadState(t *testing.T, gf *grid.File, id uint64, name string) (string, string) {
	t.Helper()
	out, _, err := run(t, "--ledger", gf.Ledger, "--trust", gf.Trust, "--key", gf.UserKey, "status", strconv.FormatUint(id, 10), "-o", "json")
	if err != nil {
		return "", err.Error()
	}
	var st statusOut
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		return "", err.Error()
	}
	for _, w := range st.Workloads {
		if w.Name == name {
			return w.State, w.Reason
		}
	}
	return "", "no workload " + name
}

// TestUpQSFS runs a four-node grid: six zdb workloads on nodes 1-3 (two
// each, in three contracts), a spare on node 4, and on node 4 a container
// with a qsfs (k=3, m=2, a node per failure domain) at /data. The
// container writes its visit counter there and a 64 MiB file goes in
// through the container's /data; node 1 is then cut off: the workload
// turns Degraded naming node 1's backends, the file still reads intact,
// and once the repair has rebuilt node 1's shards on the other zdbs the
// workload is Ready again. That redundancy is real: node 2 is cut off
// too, and the file still reads intact from the three shards left.
func TestUpQSFS(t *testing.T) {
	skipUnlessGrid(t, "curl", "nsenter", "runc")
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("needs /dev/fuse")
	}
	t.Setenv("XDG_CONFIG_HOME", t.TempDir()) // as in TestUpZDB
	dir := t.TempDir()
	gf, stop := upGridNodes(t, dir, 4)
	t.Cleanup(func() {
		if !t.Failed() {
			return
		}
		logs, _ := filepath.Glob(filepath.Join(dir, "nodes", "node4", "data", "workload", "v1", "qsfs", "*", "*", "log"))
		for _, l := range logs {
			b, _ := os.ReadFile(l)
			t.Logf("%s:\n%s", l, b)
		}
	})
	pass, err := gf.Passphrase()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("ZGRID_PASSPHRASE", string(pass))
	t.Setenv("ZDB_PASSWORD", "zdb-test-password")
	mnemonic, err := identity.NewMnemonic(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("STORE_MNEMONIC", mnemonic)
	c, err := client.Dial(t.Context(), gf.Ledger, client.Options{TrustFile: gf.Trust})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var backends []string
	for _, n := range gf.Nodes[:3] {
		id := deployFile(t, gf, c, zdbSpec, n.ID)
		backends = append(backends, fmt.Sprintf("%d/db1", id), fmt.Sprintf("%d/db2", id))
	}
	spare := deployFile(t, gf, c, `version: 1
secrets:
  ZDB_PASSWORD: {env: ZDB_PASSWORD}
workloads:
  - {name: spare, type: zdb, size: 256MiB, password: ZDB_PASSWORD}
`, gf.Nodes[3].ID)
	backends = append(backends, fmt.Sprintf("%d/spare", spare))
	fsID := deployFile(t, gf, c, fmt.Sprintf(`version: 1
secrets:
  ZDB_PASSWORD: {env: ZDB_PASSWORD}
  STORE_MNEMONIC: {env: STORE_MNEMONIC}
workloads:
  - name: fs
    type: qsfs
    k: 3
    m: 2
    secret: STORE_MNEMONIC
    password: ZDB_PASSWORD
    backends: [%s]
  - name: web
    type: container
    image: %s
    cpu: 250m
    memory: 64MiB
    ports: [8080]
    mounts: [{volume: fs, path: /data}]
`, strings.Join(backends, ", "), exampleImage(t, gf)), gf.Nodes[3].ID)

	// The container counts its visits in /data/visits, on the qsfs.
	node4 := "/run/netns/" + gf.Nodes[3].Namespace
	body := eventually(t, 20*time.Second, "the container's page", noErr(func() (string, error) {
		out, err := exec.Command("nsenter", "--net="+node4, "curl", "-sS", "-m", "3", "http://10.250.4.2:8080/").CombinedOutput()
		return string(out), err
	}))
	if !strings.Contains(body, "(visit 1)") {
		t.Fatalf("GET /: %q: the container could not write /data/visits on its qsfs", body)
	}
	// 64 MiB into the container's /data (through its mount namespace).
	data := filepath.Join("/proc", strconv.Itoa(firstContainerPID(t, dir, 4)), "root", "data")
	if b, err := os.ReadFile(filepath.Join(data, "visits")); err != nil || strings.TrimSpace(string(b)) != "1" {
		t.Fatalf("/data/visits seen from the container: %q %v", b, err)
	}
	src := make([]byte, 64<<20)
	rand.Read(src)
	sum := sha256.Sum256(src)
	want := hex.EncodeToString(sum[:])
	if err := os.WriteFile(filepath.Join(data, "big"), src, 0o644); err != nil {
		t.Fatalf("write 64 MiB into the container's /data: %v", err)
	}
	if got, err := sha256File(filepath.Join(data, "big")); err != nil || got != want {
		t.Fatalf("read back: %s %v, want %s", got, err, want)
	}
	if st, why := workloadState(t, gf, fsID, "fs"); st != ledger.WorkloadReady {
		t.Fatalf("qsfs before the outage: %s (%s)", st, why)
	}

	// Node 1 drops off the overlay.
	cut := func(i int) {
		t.Helper()
		sumDir := sha256.Sum256([]byte(dir))
		prefix := "zg" + hex.EncodeToString(sumDir[:2])
		if out, err := exec.Command("ip", "-n", prefix+"u", "link", "set", fmt.Sprintf("%su%d", prefix, i), "down").CombinedOutput(); err != nil {
			t.Fatalf("cut node %d: %v: %s", i, err, out)
		}
	}
	cut(1)
	reason := eventually(t, 60*time.Second, "qsfs degraded", func() (string, bool) {
		st, why := workloadState(t, gf, fsID, "fs")
		return st + ": " + why, st == ledger.WorkloadDegraded
	})
	if !strings.Contains(reason, zdb.NamespaceName(parseRef(t, backends[0]))) {
		t.Errorf("degraded without naming node 1's backend %s: %s", backends[0], reason)
	}
	if got, err := sha256File(filepath.Join(data, "big")); err != nil || got != want {
		t.Fatalf("read with node 1 down: %s %v, want %s", got, err, want)
	}
	eventually(t, 120*time.Second, "qsfs healthy after the repair", func() (string, bool) {
		st, why := workloadState(t, gf, fsID, "fs")
		return st + ": " + why, st == ledger.WorkloadReady
	})
	// Redundancy is back: with node 2 gone as well the file still reads.
	cut(2)
	if got, err := sha256File(filepath.Join(data, "big")); err != nil || got != want {
		t.Fatalf("read with nodes 1 and 2 down after the repair: %s %v, want %s", got, err, want)
	}
	c.Close()
	stop()
	assertGridGone(t, dir, gf)
}

func parseRef(t *testing.T, s string) (uint64, string) {
	id, name, _ := strings.Cut(s, "/")
	n, err := strconv.ParseUint(id, 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return n, name
}
