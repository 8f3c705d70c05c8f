package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/grid"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
)

// syncBuffer is a bytes.Buffer that `zgrid up` writes to while the test
// reads it.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// skipUnlessGrid skips a test when this machine cannot run `zgrid up`
// (root, the nodes' tools, /dev/net/tun: grid.CheckHost) or lacks the
// tools the test itself runs.
func skipUnlessGrid(t *testing.T, tools ...string) {
	t.Helper()
	if err := grid.CheckHost(grid.ThisHost()); err != nil {
		t.Skipf("zgrid up cannot run here: %v", err)
	}
	for _, bin := range tools {
		if _, err := exec.LookPath(bin); err != nil {
			t.Skipf("needs %s on PATH", bin)
		}
	}
}

// upGrid runs `zgrid up` in this process until the returned stop is called.
func upGrid(t *testing.T, dir string) (gf *grid.File, stop func()) {
	t.Helper()
	return upGridNodes(t, dir, 2)
}

// upGridNodes is upGrid with nodes nodes.
func upGridNodes(t *testing.T, dir string, nodes int) (gf *grid.File, stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(t.Context())
	var out, errb syncBuffer
	done := make(chan error, 1)
	go func() {
		cmd := newRoot(&out, &errb)
		cmd.SetArgs([]string{"up", "--dir", dir, "--nodes", strconv.Itoa(nodes), "--ledger-addr", "127.0.0.1:0", "--hub-addr", "127.0.0.1:0", "--gateway-addr", "127.0.0.1:0",
			"--block-interval", "200ms", "--heartbeat", "2s", "--release-every", "1s"})
		done <- cmd.ExecuteContext(ctx)
	}()
	deadline := time.After(75 * time.Second)
	for !strings.Contains(out.String(), "grid ready") {
		select {
		case err := <-done:
			t.Fatalf("zgrid up stopped before it was ready: %v\n%s", err, errb.String())
		case <-deadline:
			cancel()
			<-done
			t.Fatalf("no `grid ready`\n%s", errb.String())
		case <-time.After(100 * time.Millisecond):
		}
	}
	if strings.Contains(out.String(), "grid ready with problems") {
		cancel()
		<-done
		t.Fatalf("the grid's nodes report conditions:\n%s", out.String())
	}
	gf, err := grid.Load(filepath.Join(dir, "grid.json"))
	if err != nil {
		t.Fatal(err)
	}
	stopped := false
	stop = func() {
		if stopped {
			return
		}
		stopped = true
		cancel()
		if err := <-done; err != nil {
			t.Errorf("zgrid up returned %v", err)
		}
		if t.Failed() {
			t.Logf("zgrid up log:\n%s", errb.String())
		}
	}
	t.Cleanup(stop)
	return gf, stop
}

// TestUpDeployHello runs a two-node grid, deploys the example through the
// CLI, reaches its HTTP port from the node's namespace, stops the grid,
// checks nothing is left behind, and starts it again on the same state.
func TestUpDeployHello(t *testing.T) {
	skipUnlessGrid(t, "curl")
	dir := t.TempDir()
	gf, stop := upGrid(t, dir)
	if len(gf.Nodes) != 2 || gf.Nodes[0].Namespace == "" || gf.Example == "" || gf.ChainID == "" {
		t.Fatalf("grid.json: %+v", gf)
	}
	if fi, err := os.Stat(gf.PassphraseFile); err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("passphrase file: %v %v", fi, err)
	}
	pass, err := gf.Passphrase()
	if err != nil {
		t.Fatal(err)
	}
	t.Setenv("ZGRID_PASSPHRASE", string(pass))
	out, errb, err := run(t, "--ledger", gf.Ledger, "--trust", gf.Trust, "--key", gf.UserKey, "deploy", "-f", gf.Example)
	if err != nil {
		t.Fatalf("deploy: %v\n%s", err, errb)
	}
	id, err := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
	if err != nil {
		t.Fatalf("deploy printed %q", out)
	}
	c, err := client.Dial(t.Context(), gf.Ledger, client.Options{TrustFile: gf.Trust})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	eventually(t, 40*time.Second, "contract ready", func() (any, bool) {
		con, err := c.Contract(t.Context(), id)
		return con, err == nil && con.State == ledger.StateReady
	})
	// The node's first container link is slot 0 of its subnet 10.250.1.0/24.
	ns := gf.Nodes[0].Namespace
	body := eventually(t, 20*time.Second, "hello over HTTP", func() (string, bool) {
		b, err := exec.Command("nsenter", "--net=/run/netns/"+ns, "curl", "-sS", "-m", "2", "http://10.250.1.2:8080/").CombinedOutput()
		return string(b), err == nil
	})
	if !strings.Contains(body, "hello from zerogrid") || !strings.Contains(body, "(visit 1)") {
		t.Fatalf("GET /: %q", body)
	}
	// The same page from the host through the gateway, over the tunnel the
	// node opened: https://hello.grid.localhost:PORT/, trusting the grid's CA.
	if gf.Gateway == nil || gf.Gateway.CA == "" {
		t.Fatalf("grid.json has no gateway: %+v", gf)
	}
	// The portal, on the gateway's CA: its sign-in page.
	if gf.Portal == nil || gf.Portal.CA == "" {
		t.Fatalf("grid.json has no portal: %+v (see %s)", gf.Portal, filepath.Join(dir, "portal", "portal.log"))
	}
	eventually(t, 10*time.Second, "the portal's sign-in page", func() (string, bool) {
		b, err := exec.Command("curl", "-sS", "-m", "3", "--cacert", gf.Portal.CA, "--resolve", "portal.grid.localhost:8444:127.0.0.1",
			gf.Portal.URL+"signin").CombinedOutput()
		return string(b), err == nil && strings.Contains(string(b), "Sign in with a passkey")
	})
	url := strings.Replace(gf.Gateway.URL, "NAME", "hello", 1)
	resolve := "hello.grid.localhost:" + url[strings.LastIndex(url, ":")+1:len(url)-1] + ":127.0.0.1"
	body = eventually(t, 30*time.Second, "hello through the gateway", func() (string, bool) {
		b, err := exec.Command("curl", "-sS", "-m", "3", "--cacert", gf.Gateway.CA, "--resolve", resolve, url).CombinedOutput()
		return string(b), err == nil && strings.Contains(string(b), "hello from zerogrid")
	})
	if !strings.Contains(body, "(visit 2)") {
		t.Fatalf("GET %s: %q, want the second visit", url, body)
	}
	checkNodesFollowRelease(t, dir, gf, c, fmt.Sprintf("zg-%d-web", id))
	t.Run("portal", func(t *testing.T) { upPortalJourney(t, gf) })
	c.Close()
	stop()
	assertGridGone(t, dir, gf)

	// A second run reuses keys, ledger, farm and node registrations, and
	// the node brings the deployment back.
	gf2, stop2 := upGrid(t, dir)
	if gf2.Farm != gf.Farm || gf2.Nodes[0].ID != gf.Nodes[0].ID || gf2.Nodes[1].ID != gf.Nodes[1].ID || gf2.UserKey != gf.UserKey {
		t.Fatalf("second run changed the grid: %+v then %+v", gf, gf2)
	}
	body = eventually(t, 30*time.Second, "hello after restart", func() (string, bool) {
		b, err := exec.Command("nsenter", "--net=/run/netns/"+ns, "curl", "-sS", "-m", "2", "http://10.250.1.2:8080/").CombinedOutput()
		return string(b), err == nil
	})
	if !strings.Contains(body, "(visit 3)") {
		t.Fatalf("GET / after restart (volume data kept?): %q", body)
	}
	// The gateway came back on another tunnel port; the spec names it by
	// key, so the node finds it where it announced itself, and the page
	// is served through it again.
	if gf2.Gateway == nil || gf2.Gateway.Key != gf.Gateway.Key {
		t.Fatalf("the gateway changed keys across the restart: %+v then %+v", gf.Gateway, gf2.Gateway)
	}
	url2 := strings.Replace(gf2.Gateway.URL, "NAME", "hello", 1)
	resolve2 := "hello.grid.localhost:" + url2[strings.LastIndex(url2, ":")+1:len(url2)-1] + ":127.0.0.1"
	body = eventually(t, 60*time.Second, "hello through the gateway after restart", func() (string, bool) {
		b, err := exec.Command("curl", "-sS", "-m", "3", "--cacert", gf2.Gateway.CA, "--resolve", resolve2, url2).CombinedOutput()
		return string(b), err == nil && strings.Contains(string(b), "hello from zerogrid")
	})
	if !strings.Contains(body, "(visit 4)") {
		t.Fatalf("GET %s after restart: %q, want the fourth visit", url2, body)
	}
	stop2()
	assertGridGone(t, dir, gf2)
}

// assertGridGone checks that no namespace, process, mount, loop device or
// container of the grid in dir remains.
func assertGridGone(t *testing.T, dir string, gf *grid.File) {
	t.Helper()
	for _, n := range gf.Nodes {
		if _, err := os.Stat("/run/netns/" + n.Namespace); err == nil {
			t.Errorf("namespace %s left behind", n.Namespace)
		}
	}
	// The overlay's underlay bridge: "zg" + 4 hex digits of the grid
	// directory's hash + "u".
	dsum := sha256.Sum256([]byte(dir))
	if _, err := os.Stat("/run/netns/zg" + hex.EncodeToString(dsum[:2]) + "u"); err == nil {
		t.Error("underlay namespace left behind")
	}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		if bytes.Contains(b, []byte(dir)) {
			t.Errorf("process left behind: %s %q", p, bytes.ReplaceAll(b, []byte{0}, []byte{' '}))
		}
	}
	if b, _ := os.ReadFile("/proc/self/mountinfo"); bytes.Contains(b, []byte(dir)) {
		t.Errorf("mounts left behind under %s:\n%s", dir, b)
	}
	if b, _ := exec.Command("losetup", "-l").Output(); bytes.Contains(b, []byte(dir)) {
		t.Errorf("loop devices left behind:\n%s", b)
	}
	for i := range gf.Nodes {
		// The container manager names its namespaces after its data dir.
		sum := sha256.Sum256([]byte(filepath.Join(dir, "nodes", "node"+strconv.Itoa(i+1), "data")))
		if left, _ := filepath.Glob("/run/netns/zg-" + hex.EncodeToString(sum[:3]) + "-*"); len(left) > 0 {
			t.Errorf("container namespaces left behind: %v", left)
		}
		root := filepath.Join(dir, "nodes", "node"+strconv.Itoa(i+1), "run", "runc")
		if b, _ := exec.Command("runc", "--root", root, "list", "-q").Output(); len(bytes.TrimSpace(b)) > 0 {
			t.Errorf("containers left behind in %s: %s", root, b)
		}
	}
}

func eventually[T any](t *testing.T, limit time.Duration, what string, f func() (T, bool)) T {
	t.Helper()
	deadline := time.Now().Add(limit)
	for {
		v, ok := f()
		if ok {
			return v
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s: last %+v", what, v)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func TestUseGrid(t *testing.T) {
	t.Setenv("ZGRID_PASSPHRASE", "")
	dir := t.TempDir()
	pass := filepath.Join(dir, "passphrase")
	if err := os.WriteFile(pass, []byte("grid pass\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	gridFile := filepath.Join(dir, "grid.json")
	js := `{"version":1,"ledger":"http://127.0.0.1:9","user_key":"/k/user.key","passphrase_file":"` + pass + `"}`
	if err := os.WriteFile(gridFile, []byte(js), 0o600); err != nil {
		t.Fatal(err)
	}
	g := &globals{}
	if err := g.useGrid(gridFile); err != nil {
		t.Fatal(err)
	}
	if g.ledger != "http://127.0.0.1:9" || g.keyPath != "/k/user.key" || os.Getenv("ZGRID_PASSPHRASE") != "grid pass" {
		t.Fatalf("useGrid: ledger %q key %q pass %q", g.ledger, g.keyPath, os.Getenv("ZGRID_PASSPHRASE"))
	}
	if err := g.useGrid(filepath.Join(dir, "missing.json")); err == nil || !strings.Contains(err.Error(), "zgrid up") {
		t.Fatalf("missing grid file: %v", err)
	}
}

// TestUpHelpNamesPrerequisites: `zgrid up --help` lists what the grid
// needs and the apt-get line that installs it.
func TestUpHelpNamesPrerequisites(t *testing.T) {
	var b bytes.Buffer
	cmd := newRoot(&b, &b)
	cmd.SetOut(&b) // cobra prints help there
	cmd.SetArgs([]string{"up", "--help"})
	if err := cmd.ExecuteContext(t.Context()); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, w := range []string{"runc", "mkfs.ext4", "nft", "nsenter", "/dev/net/tun", "root",
		"sudo apt-get install -y iproute2 util-linux runc e2fsprogs mount nftables"} {
		if !strings.Contains(out, w) {
			t.Errorf("zgrid up --help does not name %q:\n%s", w, out)
		}
	}
}

// checkNodesFollowRelease publishes a second release of zgridd while the
// grid runs: every node verifies it, re-executes it from memory in the
// same process, reports it on the ledger, and its container keeps running
// (same pid).
func checkNodesFollowRelease(t *testing.T, dir string, gf *grid.File, c *client.Client, ctr string) {
	t.Helper()
	runcRoot := filepath.Join(dir, "nodes", "node1", "run", "runc")
	pidBefore := containerPID(t, runcRoot, ctr)
	nodes := nodeProcs(t, dir)
	if len(nodes) != len(gf.Nodes) {
		t.Fatalf("found node processes %v for %d nodes", nodes, len(gf.Nodes))
	}
	for _, n := range gf.Nodes {
		if got := nodeVersion(t, c, n.ID); got != "1" {
			t.Fatalf("node %d reports release %q, want 1 (the zgridd zgrid up signed)", n.ID, got)
		}
	}
	// Release 2: the same program with other bytes (an ELF runs with data
	// appended), so no second build is needed.
	st, _, err := run(t, "release", "status", "--repo", gf.Release, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var status struct {
		Targets []struct{ Name, SHA256 string }
	}
	if err := json.Unmarshal([]byte(st), &status); err != nil || len(status.Targets) != 1 {
		t.Fatalf("release status: %v %s", err, st)
	}
	bin, err := os.ReadFile(filepath.Join(gf.Release, "targets", status.Targets[0].SHA256+"."+status.Targets[0].Name))
	if err != nil {
		t.Fatal(err)
	}
	rel2 := filepath.Join(t.TempDir(), "zgridd")
	if err := os.WriteFile(rel2, append(bin, "\nzerogrid test release 2\n"...), 0o755); err != nil {
		t.Fatal(err)
	}
	keys := filepath.Join(filepath.Dir(gf.Release), "keys")
	if _, errb, err := run(t, "release", "publish", "--repo", gf.Release, "--version", "2", "--hub", gf.Hub,
		"--keys", strings.Join([]string{filepath.Join(keys, "targets.key"), filepath.Join(keys, "snapshot.key"), filepath.Join(keys, "timestamp.key")}, ","),
		status.Targets[0].Name+"="+rel2); err != nil {
		t.Fatalf("release publish: %v\n%s", err, errb)
	}
	for _, n := range gf.Nodes {
		eventually(t, 60*time.Second, fmt.Sprintf("node %d running release 2", n.ID), func() (string, bool) {
			v := nodeVersion(t, c, n.ID)
			return v, v == "2"
		})
	}
	after := nodeProcs(t, dir)
	for pid, exe := range nodes {
		if _, ok := after[pid]; !ok {
			t.Fatalf("node process %d (%s) is gone: the update did not re-execute in place", pid, exe)
		}
		if got := after[pid]; got != "/memfd:zgridd-2 (deleted)" {
			t.Errorf("node process %d runs %q, want the verified release from memory", pid, got)
		}
	}
	if pid := containerPID(t, runcRoot, ctr); pid != pidBefore {
		t.Fatalf("container %s was restarted by the update: pid %d, before %d", ctr, pid, pidBefore)
	}
}

func nodeVersion(t *testing.T, c *client.Client, id uint64) string {
	n, err := c.Node(t.Context(), id)
	if err != nil {
		return err.Error()
	}
	return n.Version
}

// nodeProcs maps the pids of the grid's node agents to their executables.
func nodeProcs(t *testing.T, dir string) map[int]string {
	out := map[int]string{}
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		args := strings.Split(string(b), "\x00")
		if len(args) < 2 || args[1] != "node" || !bytes.Contains(b, []byte(dir)) {
			continue
		}
		pid, _ := strconv.Atoi(filepath.Base(filepath.Dir(p)))
		exe, _ := os.Readlink(filepath.Join(filepath.Dir(p), "exe"))
		out[pid] = exe
	}
	return out
}

func containerPID(t *testing.T, runcRoot, id string) int {
	t.Helper()
	b, err := exec.Command("runc", "--root", runcRoot, "state", id).Output()
	if err != nil {
		t.Fatalf("runc state %s: %v", id, err)
	}
	var st struct{ Pid int }
	if err := json.Unmarshal(b, &st); err != nil || st.Pid == 0 {
		t.Fatalf("runc state %s: %v %s", id, err, b)
	}
	return st.Pid
}
