package main

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
	"github.com/zerogrid/zerogrid/internal/ledger/ledgertest"
	"github.com/zerogrid/zerogrid/internal/node"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload/idmap"
)

const testPass = "node test passphrase"

// TestNodeAgentProcess runs `zgridd node` as its own process against a real
// ledger: it registers, opens no listening socket, runs a deployment, comes
// back after SIGKILL without duplicating anything, and removes it on cancel.
func TestNodeAgentProcess(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root: the node agent mounts volumes and makes network namespaces")
	}
	bin := buildZgridd(t)
	c := ledgertest.Start(t, nil)
	user, _ := identity.GenerateKey(rand.Reader)
	us := c.Signer(user)
	submit(t, us, ledger.Op{TwinRegister: &ledger.TwinRegister{}})
	farm := submit(t, us, ledger.Op{FarmCreate: &ledger.FarmCreate{Name: "f"}})
	dir := t.TempDir()
	nodeKey, keyFile := writeNodeKey(t, dir)
	// The approval carries the farm owner's trust root: the node verifies
	// the ledger from it, with no --trust-root.
	ap, err := node.NewApprovalFile(t.Context(), c, user, farm, nodeKey.Public(), time.Now().Add(time.Hour).Unix())
	if err != nil {
		t.Fatal(err)
	}
	apFile := filepath.Join(dir, "approval.json")
	b, _ := json.Marshal(ap)
	os.WriteFile(apFile, b, 0o600)
	args := []string{"node", "--ledger", c.URL(), "--key", keyFile, "--farm", fmt.Sprint(farm), "--data", filepath.Join(dir, "data"),
		"--approval", apFile, "--heartbeat", "1s", "--run-dir", filepath.Join(dir, "run"), "--subnet", "10.251.0.0/24"}
	p := startNode(t, bin, args)
	acct := waitFor(t, "node registered and heartbeating", func() (*ledger.Account, bool) {
		a, err := c.Account(t.Context(), nodeKey.Public())
		if err != nil || a.Node == 0 {
			return a, false
		}
		n, err := c.Node(t.Context(), a.Node)
		return a, err == nil && n.Types != nil // the ledger offers a node nothing before its first heartbeat
	})
	assertNoListeners(t, p.Process.Pid)

	id := deployVolume(t, c, user, acct.Node)
	waitContract(t, c, id, ledger.StateReady)

	// Kill the agent hard and start it again: the deployment comes back.
	p.Process.Kill()
	p.Wait()
	before, _ := c.Contract(t.Context(), id)
	p = startNode(t, bin, args)
	waitFor(t, "re-reported after restart", func() (*ledger.Contract, bool) {
		con, err := c.Contract(t.Context(), id)
		return con, err == nil && con.EventSeq > before.EventSeq && con.State == ledger.StateReady
	})
	vols, _ := filepath.Glob(filepath.Join(dir, "data", "workload", "v1", "volumes", fmt.Sprint(id), "*"))
	if len(vols) != 1 {
		t.Fatalf("volumes after restart: %v", vols)
	}
	if _, err := c.ContractEvents(t.Context(), id); err != nil {
		t.Fatalf("event log: %v", err)
	}

	submit(t, us, ledger.Op{ContractCancel: &ledger.ContractCancel{Contract: id}})
	waitFor(t, "volume removed", func() (any, bool) {
		vols, _ := filepath.Glob(filepath.Join(dir, "data", "workload", "v1", "volumes", fmt.Sprint(id), "*"))
		return vols, len(vols) == 0
	})
	p.Process.Signal(syscall.SIGTERM)
	if err := p.Wait(); err != nil {
		t.Fatalf("node did not stop cleanly on SIGTERM: %v", err)
	}
}

// TestNodeReportsWhatItCannotRun runs `zgridd node` where neither runc
// nor e2fsprogs can be found: its heartbeat leaves container out of the
// types it runs and says why, with the package to install, and the ledger
// then refuses a container contract for it with that reason.
func TestNodeReportsWhatItCannotRun(t *testing.T) {
	bin := buildZgridd(t)
	c := ledgertest.Start(t, nil)
	user, _ := identity.GenerateKey(rand.Reader)
	us := c.Signer(user)
	submit(t, us, ledger.Op{TwinRegister: &ledger.TwinRegister{}})
	farm := submit(t, us, ledger.Op{FarmCreate: &ledger.FarmCreate{Name: "f"}})
	dir := t.TempDir()
	nodeKey, keyFile := writeNodeKey(t, dir)
	ap, _ := ledger.NewFarmApproval(user, c.Chain(), farm, nodeKey.Public(), time.Now().Add(time.Hour).Unix())
	apFile := filepath.Join(dir, "approval.json")
	b, _ := json.Marshal(ap)
	os.WriteFile(apFile, b, 0o600)
	p := exec.Command(bin, "node", "--ledger", c.URL(), "--key", keyFile, "--farm", fmt.Sprint(farm), "--data", filepath.Join(dir, "data"),
		"--approval", apFile, "--trust-root", ledgertest.TrustFile(t, c), "--heartbeat", "1s", "--run-dir", filepath.Join(dir, "run"))
	p.Env = append(os.Environ(), "ZGRID_PASSPHRASE="+testPass, "PATH="+t.TempDir()) // an empty PATH: no runc, no mkfs.ext4
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
	n := waitFor(t, "a heartbeat", func() (*ledger.Node, bool) {
		a, err := c.Account(t.Context(), nodeKey.Public())
		if err != nil || a.Node == 0 {
			return nil, false
		}
		n, err := c.Node(t.Context(), a.Node)
		return n, err == nil && n.Types != nil
	})
	if slices.Contains(n.Types, spec.TypeContainer) || !slices.Contains(n.Types, spec.TypeVolume) {
		t.Errorf("node says it runs %v", n.Types)
	}
	conds := map[string]string{}
	for _, cond := range n.Conditions {
		conds[cond.Type] = cond.Reason
	}
	want := "containers need root"
	if os.Geteuid() == 0 {
		want = "runc is not installed (Debian package runc)"
	}
	if why := conds[ledger.CannotRunPrefix+spec.TypeContainer]; !strings.Contains(why, want) {
		t.Errorf("cannot-run-container condition %q, want %q (conditions %v)", why, want, conds)
	}
	if why := conds["volume-size-not-enforced"]; !strings.Contains(why, "e2fsprogs") && os.Geteuid() == 0 {
		t.Errorf("volume-size-not-enforced condition %q does not name e2fsprogs (conditions %v)", why, conds)
	}
	_, err := deploy(t, c, user, n.ID, spec.Workload{Name: "web", Type: spec.TypeContainer, Resources: spec.Resources{CPU: 100, Memory: 64 << 20}},
		spec.ContainerConfig{Image: "127.0.0.1:5000/app@sha256:" + strings.Repeat("a", 64)})
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("the ledger took a container contract for this node: %v", err)
	}
}

func buildZgridd(t *testing.T) string {
	bin := filepath.Join(t.TempDir(), "zgridd")
	out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput()
	if err != nil {
		t.Fatalf("build zgridd: %v\n%s", err, out)
	}
	return bin
}

func submit(t *testing.T, s *client.Signer, op ledger.Op) uint64 {
	t.Helper()
	res, err := s.Submit(t.Context(), op)
	if err != nil {
		t.Fatalf("%s: %v", op.Kind(), err)
	}
	return res.ID
}

func writeNodeKey(t *testing.T, dir string) (identity.PrivateKey, string) {
	k, _ := identity.GenerateKey(rand.Reader)
	kf, err := identity.NewKeyFile(identity.KindNode, k)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, "node.key")
	if err := identity.WriteKeyFile(path, kf, []byte(testPass)); err != nil {
		t.Fatal(err)
	}
	return k, path
}

// startNode runs the agent and waits for its ready line.
func startNode(t *testing.T, bin string, args []string) *exec.Cmd {
	t.Helper()
	p := exec.Command(bin, args...)
	p.Env = append(os.Environ(), "ZGRID_PASSPHRASE="+testPass)
	logf, _ := os.Create(filepath.Join(t.TempDir(), "node.log"))
	p.Stderr = logf
	out, _ := p.StdoutPipe()
	if err := p.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		p.Process.Kill()
		p.Wait()
		if t.Failed() {
			b, _ := os.ReadFile(logf.Name())
			t.Logf("node log:\n%s", b)
		}
	})
	ready := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if strings.HasPrefix(sc.Text(), "node ready") {
				ready <- sc.Text()
			}
		}
	}()
	select {
	case <-ready:
	case <-time.After(60 * time.Second):
		t.Fatal("zgridd node never said it was ready")
	}
	return p
}

func waitFor[T any](t *testing.T, what string, f func() (T, bool)) T {
	t.Helper()
	deadline := time.Now().Add(45 * time.Second)
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

func waitContract(t *testing.T, c *client.Client, id uint64, state string) {
	waitFor(t, "contract "+state, func() (*ledger.Contract, bool) {
		con, err := c.Contract(t.Context(), id)
		return con, err == nil && con.State == state
	})
}

func deployVolume(t *testing.T, c *client.Client, owner identity.PrivateKey, node uint64) uint64 {
	id, err := deploy(t, c, owner, node, spec.Workload{Name: "data", Type: spec.TypeVolume, Resources: spec.Resources{Disk: 32 << 20}}, spec.VolumeConfig{})
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// deploy creates a contract for node with one workload w of config cfg.
func deploy(t *testing.T, c *client.Client, owner identity.PrivateKey, node uint64, w spec.Workload, cfg any) (uint64, error) {
	if err := w.SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	raw, err := (&spec.Spec{Version: 1, Workloads: []spec.Workload{w}}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	acct, _ := c.Account(t.Context(), owner.Public())
	nonce := make([]byte, 16)
	rand.Read(nonce)
	d := ledger.DeploymentFor(c.Chain(), acct.Twin, node, nonce, 1, raw, nil)
	sig, _ := owner.Sign(ledger.TagDeployment, ledger.TxVersion, d)
	res, err := c.Signer(owner).Submit(t.Context(), ledger.Op{ContractCreate: &ledger.ContractCreate{Node: node, Nonce: nonce, Spec: raw, SpecSig: ledger.Sig{Key: owner.Public(), Sig: sig}}})
	if err != nil {
		return 0, err
	}
	return res.ID, nil
}

func TestParsePool(t *testing.T) {
	for in, want := range map[string]idmap.Pool{"": idmap.DefaultPool, "0x10000000:16": {First: 1 << 28, Count: 16}, "1048576:2": {First: 1 << 20, Count: 2}} {
		if got, err := parsePool(in); err != nil || got != want {
			t.Errorf("parsePool(%q) = %v, %v; want %v", in, got, err, want)
		}
	}
	for _, bad := range []string{"1:2", "0x10000000", "x:1", "0x10000000:0", "0xffff0000:2"} {
		if _, err := parsePool(bad); err == nil {
			t.Errorf("parsePool(%q) accepted", bad)
		}
	}
}
