package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/ledgertest"
	"github.com/zerogrid/zerogrid/internal/release"
)

// TestNodeFollowsReleases runs a release hub (`zgridd hub`), a proxy the
// test controls and a node (`zgridd node --release-root`), all real
// processes but the proxy. The node starts from release 1, refuses a
// tampered release 2 and keeps running 1 (saying why on the ledger), then
// takes the genuine release 2 by re-executing itself from memory (same
// process), and refuses a rollback of the metadata afterwards.
func TestNodeFollowsReleases(t *testing.T) {
	bin := buildZgridd(t)
	one, err := os.ReadFile(bin)
	if err != nil {
		t.Fatal(err)
	}
	two := append(append([]byte{}, one...), "\nrelease 2\n"...) // an ELF runs with data appended

	// The release repository: root 2 of 3.
	dir := t.TempDir()
	repo := &release.Repo{Dir: filepath.Join(dir, "repo")}
	signers := release.Signers{}
	roles := release.RoleSet{}
	for role, n := range map[string]int{release.RoleRoot: 3, release.RoleTargets: 1, release.RoleSnapshot: 1, release.RoleTimestamp: 1} {
		rk := release.RoleKeys{Threshold: min(n, 2)}
		for range n {
			k, _ := identity.GenerateKey(rand.Reader)
			signers[role] = append(signers[role], k)
			rk.Keys = append(rk.Keys, k.Public())
		}
		roles[role] = rk
	}
	if err := repo.Init(roles, signers[release.RoleRoot][1:]); err != nil {
		t.Fatal(err)
	}
	target := release.TargetName()
	if err := repo.Publish("1", "", []release.File{{Name: target, Data: one}}, signers); err != nil {
		t.Fatal(err)
	}
	rootFile := filepath.Join(repo.Dir, "root.json")
	hubURL := startHub(t, bin, filepath.Join(dir, "hub"), rootFile)
	push := func() {
		t.Helper()
		if _, err := release.Push(t.Context(), http.DefaultClient, hubURL, repo.Dir); err != nil {
			t.Fatal(err)
		}
	}
	push()
	oldTimestamp, _ := os.ReadFile(filepath.Join(repo.Dir, "timestamp.json"))
	px := &tamperProxy{upstream: hubURL}
	ps := httptest.NewServer(px)
	t.Cleanup(ps.Close)

	c := ledgertest.Start(t, nil)
	user, _ := identity.GenerateKey(rand.Reader)
	us := c.Signer(user)
	submit(t, us, ledger.Op{TwinRegister: &ledger.TwinRegister{}})
	farm := submit(t, us, ledger.Op{FarmCreate: &ledger.FarmCreate{Name: "f"}})
	nodeKey, keyFile := writeNodeKey(t, dir)
	ap, _ := ledger.NewFarmApproval(user, c.Chain(), farm, nodeKey.Public(), time.Now().Add(time.Hour).Unix())
	apFile := filepath.Join(dir, "approval.json")
	b, _ := json.Marshal(ap)
	os.WriteFile(apFile, b, 0o600)
	p := exec.Command(bin, "node", "--ledger", c.URL(), "--key", keyFile, "--farm", fmt.Sprint(farm), "--data", filepath.Join(dir, "data"),
		"--approval", apFile, "--trust-root", ledgertest.TrustFile(t, c), "--heartbeat", "1s", "--run-dir", filepath.Join(dir, "run"),
		"--release-root", rootFile, "--hub", ps.URL, "--release-every", "500ms")
	p.Env = append(os.Environ(), "ZGRID_PASSPHRASE="+testPass, "PATH="+t.TempDir()) // no runc: nothing to run but releases
	logf, _ := os.Create(filepath.Join(dir, "node.log"))
	p.Stdout, p.Stderr = logf, logf
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Process.Signal(syscall.SIGTERM)
		p.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("node log:\n%s", b)
		}
	})
	node := func(what string, ok func(*ledger.Node) bool) *ledger.Node {
		t.Helper()
		return waitFor(t, what, func() (*ledger.Node, bool) {
			a, err := c.Account(t.Context(), nodeKey.Public())
			if err != nil || a.Node == 0 {
				return nil, false
			}
			n, err := c.Node(t.Context(), a.Node)
			return n, err == nil && ok(n)
		})
	}
	cond := func(n *ledger.Node, typ string) string {
		for _, c := range n.Conditions {
			if c.Type == typ {
				return c.Reason
			}
		}
		return ""
	}
	node("release 1 reported", func(n *ledger.Node) bool { return n.Version == "1" && cond(n, release.CondRefused) == "" })

	// Release 2, tampered with on the way.
	if err := repo.Publish("2", "", []release.File{{Name: target, Data: two}}, signers); err != nil {
		t.Fatal(err)
	}
	px.tamper(target, []byte("#!/bin/sh\necho owned\n"))
	push()
	n := node("the tampered release refused", func(n *ledger.Node) bool {
		return strings.Contains(cond(n, release.CondRefused), release.ReasonHash)
	})
	if n.Version != "1" {
		t.Fatalf("node reports release %q after refusing a tampered one", n.Version)
	}
	if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.Process.Pid)); exe != bin {
		t.Fatalf("node runs %q after refusing a tampered release", exe)
	}

	// The genuine release 2: the same process runs it, from memory.
	px.tamper("", nil)
	node("release 2 reported", func(n *ledger.Node) bool { return n.Version == "2" && cond(n, release.CondRefused) == "" })
	if exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", p.Process.Pid)); exe != "/memfd:zgridd-2 (deleted)" {
		t.Fatalf("node process %d runs %q, want release 2 from memory", p.Process.Pid, exe)
	}

	// Release 1's metadata served again: a rollback, refused.
	px.set("/tuf/timestamp.json", oldTimestamp)
	n = node("the rollback refused", func(n *ledger.Node) bool {
		return strings.Contains(cond(n, release.CondRefused), release.ReasonRollback)
	})
	if n.Version != "2" {
		t.Fatalf("node reports release %q after a rollback attempt", n.Version)
	}
	px.reset()

	// Root rotation: new root and timestamp keys, signed by the old root
	// threshold and the new one; the node follows.
	retired := filepath.Join(dir, "retired")
	if err := os.CopyFS(retired, os.DirFS(repo.Dir)); err != nil {
		t.Fatal(err)
	}
	next := release.RoleSet{}
	nextSigners := release.Signers{release.RoleTargets: signers[release.RoleTargets], release.RoleSnapshot: signers[release.RoleSnapshot]}
	for role, rk := range roles {
		if role == release.RoleRoot || role == release.RoleTimestamp {
			rk = release.RoleKeys{Threshold: rk.Threshold}
			for range len(roles[role].Keys) {
				k, _ := identity.GenerateKey(rand.Reader)
				nextSigners[role] = append(nextSigners[role], k)
				rk.Keys = append(rk.Keys, k.Public())
			}
		}
		next[role] = rk
	}
	if err := repo.Rotate(next, signers[release.RoleRoot][:2], nextSigners[release.RoleRoot][:2]); err != nil {
		t.Fatal(err)
	}
	if err := repo.Refresh(nextSigners); err != nil {
		t.Fatal(err)
	}
	push()
	waitFor(t, "the node following the rotated root", func() (int64, bool) {
		b, _ := os.ReadFile(filepath.Join(dir, "data", "release", "root.json"))
		var r struct{ Signed struct{ Version int64 } }
		json.Unmarshal(b, &r)
		return r.Signed.Version, r.Signed.Version == 2
	})
	// A newer timestamp signed only by the retired timestamp key: refused.
	old := &release.Repo{Dir: retired}
	for range 3 {
		if err := old.Refresh(release.Signers{release.RoleSnapshot: signers[release.RoleSnapshot], release.RoleTimestamp: signers[release.RoleTimestamp]}); err != nil {
			t.Fatal(err)
		}
	}
	stale, _ := os.ReadFile(filepath.Join(retired, "timestamp.json"))
	px.set("/tuf/timestamp.json", stale)
	node("metadata signed by a retired key refused", func(n *ledger.Node) bool {
		return strings.Contains(cond(n, release.CondRefused), release.ReasonSignature) && n.Version == "2"
	})
}

func startHub(t *testing.T, bin, dir, root string) string {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	p := exec.CommandContext(ctx, bin, "hub", "--dir", dir, "--listen", "127.0.0.1:0", "--release-root", root)
	out, _ := p.StdoutPipe()
	p.Stderr = os.Stderr
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); p.Wait() })
	sc := bufio.NewScanner(out)
	for sc.Scan() {
		if u, ok := strings.CutPrefix(sc.Text(), "hub ready: "); ok {
			go io.Copy(io.Discard, out)
			return u
		}
	}
	t.Fatal("zgridd hub never said it was ready")
	return ""
}

// tamperProxy forwards to the hub, but can answer some paths itself and
// swap the bytes of a target.
type tamperProxy struct {
	upstream string
	mu       sync.Mutex
	paths    map[string][]byte
	target   string
	bytes    []byte
}

func (p *tamperProxy) set(path string, b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.paths == nil {
		p.paths = map[string][]byte{}
	}
	p.paths[path] = b
}

func (p *tamperProxy) reset() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.paths = nil
}

func (p *tamperProxy) tamper(target string, b []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.target, p.bytes = target, b
}

func (p *tamperProxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	p.mu.Lock()
	b, ok := p.paths[r.URL.Path]
	if p.target != "" && strings.HasPrefix(r.URL.Path, "/tuf/targets/") && strings.HasSuffix(r.URL.Path, "."+p.target) {
		b, ok = p.bytes, true
	}
	p.mu.Unlock()
	if ok {
		w.Write(b)
		return
	}
	resp, err := http.Get(p.upstream + r.URL.Path)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadGateway)
		return
	}
	defer resp.Body.Close()
	w.WriteHeader(resp.StatusCode)
	io.Copy(w, resp.Body)
}
