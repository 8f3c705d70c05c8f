package main

import (
	cryptoRand "crypto/rand"
	"encoding/json"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
	"github.com/zerogrid/zerogrid/internal/node"
	"github.com/zerogrid/zerogrid/internal/spec"
)

const helloYAML = `version: 1
workloads:
  - name: web
    type: container
    image: 127.0.0.1:5000/hello@sha256:` + "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa" + `
    cpu: 250m
    memory: 32MiB
    secret_env: [TOKEN]
    mounts: [{volume: data, path: /data}]
  - name: data
    type: volume
    size: 64MiB
secrets:
  TOKEN: {value: s3cret}
`

func TestCLIDeployStatusCancel(t *testing.T) {
	t.Setenv("ZGRID_PASSPHRASE", "correct horse battery staple")
	url := startLedger(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "me.key")
	mustRun(t, "key", "new", "--out", key)
	mustRun(t, "--ledger", url, "--key", key, "twin", "register")
	mustRun(t, "--ledger", url, "--key", key, "farm", "create", "home")
	nodeID := registerNode(t, url, key)

	specFile := filepath.Join(dir, "hello.yaml")
	if err := os.WriteFile(specFile, []byte(helloYAML), 0o600); err != nil {
		t.Fatal(err)
	}
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte(strings.Replace(helloYAML, "size: 64MiB", "size: -5", 1)), 0o600)
	if _, _, err := run(t, "--ledger", url, "--key", key, "deploy", "-f", bad, "--node", "1"); err == nil || !strings.Contains(err.Error(), "bad.yaml:12:11: workloads[1].size") {
		t.Fatalf("bad spec: %v", err)
	}
	if _, _, err := run(t, "--ledger", url, "--key", key, "deploy", "-f", specFile); err == nil || !strings.Contains(err.Error(), "--node") {
		t.Fatalf("no node: %v", err)
	}
	out := mustRun(t, "--ledger", url, "--key", key, "deploy", "-f", specFile, "--node", nodeID)
	id := strings.TrimSpace(out)
	var st statusOut
	if err := json.Unmarshal([]byte(mustRun(t, "--ledger", url, "status", id, "-o", "json")), &st); err != nil || st.State != ledger.StateCreated || st.Generation != 1 {
		t.Fatalf("status: %+v %v", st, err)
	}
	mustRun(t, "--ledger", url, "--key", key, "update", id, "-f", specFile)
	mustRun(t, "--ledger", url, "--key", key, "cancel", id)
	if err := json.Unmarshal([]byte(mustRun(t, "--ledger", url, "status", id, "-o", "json")), &st); err != nil || st.State != ledger.StateCancelled || st.Generation != 2 {
		t.Fatalf("status after cancel: %+v %v", st, err)
	}
}

func mustRun(t *testing.T, args ...string) string {
	t.Helper()
	out, _, err := run(t, args...)
	if err != nil {
		t.Fatalf("zgrid %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// registerNode registers a node key in farm 1, approved by the key in
// ownerKey, and returns its id as text.
func registerNode(t *testing.T, url, ownerKey string) string {
	t.Helper()
	kf, err := identity.ReadKeyFile(ownerKey, []byte(os.Getenv("ZGRID_PASSPHRASE")))
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(t.Context(), url, client.Options{TrustFile: os.Getenv("ZGRID_TRUST")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	nk, _ := identity.GenerateKey(cryptoRand.Reader)
	ap, _ := ledger.NewFarmApproval(kf.Key, c.Chain(), 1, nk.Public(), time.Now().Add(time.Hour).Unix())
	id, err := node.Register(t.Context(), c, nk, 1, &ap, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Signer(nk).Submit(t.Context(), ledger.Op{NodeHeartbeat: &ledger.NodeHeartbeat{Types: spec.AllTypes, Capacity: spec.Resources{CPU: 4000, Memory: 1 << 32, Disk: 1 << 36}}}); err != nil {
		t.Fatal(err)
	}
	return strconv.FormatUint(id, 10)
}
