package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/zerogrid/zerogrid/internal/grid"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
	"github.com/zerogrid/zerogrid/internal/spec"
)

// TestDeployExampleAsWritten deploys the repository's examples/hello.yaml,
// unchanged, the way its comment says (zgrid --grid GRID.json deploy -f
// examples/hello.yaml), against a ledger and a hub holding hello:latest as
// zgrid up pushes it: the tag is resolved and printed, and the contract on
// the ledger names the image by the digest the hub holds, on the grid's
// first node.
func TestDeployExampleAsWritten(t *testing.T) {
	t.Setenv("ZGRID_HUB", "")
	const pass = "example passphrase"
	t.Setenv("ZGRID_PASSPHRASE", pass)
	url := startLedger(t)
	hubURL := imageTestHub(t)
	dir := t.TempDir()
	key := filepath.Join(dir, "user.key")
	mustRun(t, "key", "new", "--out", key)
	mustRun(t, "--ledger", url, "--key", key, "twin", "register")
	mustRun(t, "--ledger", url, "--key", key, "farm", "create", "home")
	nodeID := registerNode(t, url, key)
	rootfs := imageTestTar(t, "hello.tar", map[string]string{"hello": "#!/bin/sh\n"})
	pushed := strings.TrimSpace(mustRun(t, "image", "push", "--hub", hubURL, "--repo", "hello", "--tag", "latest", "--entrypoint", "/hello", rootfs))

	example := filepath.Join("..", "..", "examples", "hello.yaml")
	// Without a hub the tag cannot be pinned: the error says what to pass.
	_, _, err := run(t, "--ledger", url, "--key", key, "deploy", "-f", example, "--node", nodeID)
	if err == nil || !regexp.MustCompile(`hello\.yaml:\d+:\d+: workloads\[0\]\.image: .*--hub URL`).MatchString(err.Error()) {
		t.Fatalf("deploy without a hub: %v", err)
	}

	passFile := filepath.Join(dir, "passphrase")
	os.WriteFile(passFile, []byte(pass+"\n"), 0o600)
	id, _ := strconv.ParseUint(nodeID, 10, 64)
	b, _ := json.Marshal(grid.File{Version: grid.FileVersion, Ledger: url, Hub: hubURL, UserKey: key, PassphraseFile: passFile,
		Nodes: []grid.Node{{ID: id}}, Farm: 1})
	gridFile := filepath.Join(dir, "grid.json")
	os.WriteFile(gridFile, b, 0o600)
	t.Setenv("ZGRID_PASSPHRASE", "")

	out, stderr, err := run(t, "--grid", gridFile, "deploy", "-f", example)
	if err != nil {
		t.Fatalf("deploy %s as written: %v\n%s", example, err, stderr)
	}
	if !strings.Contains(stderr, "image hello:latest resolved to "+pushed+"\n") || !strings.Contains(stderr, "node "+nodeID) {
		t.Errorf("deploy does not say what it resolved and where it deploys (pushed %s):\n%s", pushed, stderr)
	}
	contract, err := strconv.ParseUint(strings.TrimSpace(out), 10, 64)
	if err != nil {
		t.Fatalf("deploy printed %q", out)
	}
	c, err := client.Dial(t.Context(), url, client.Options{TrustFile: os.Getenv("ZGRID_TRUST")})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	con, err := c.Contract(t.Context(), contract)
	if err != nil {
		t.Fatal(err)
	}
	s, err := spec.Decode(con.Spec)
	if err != nil {
		t.Fatal(err)
	}
	var web spec.ContainerConfig
	if err := s.Workloads[0].DecodeConfig(&web); err != nil || web.Image != pushed || con.Node != id {
		t.Fatalf("contract on node %d names image %q (%v); want %q on node %d", con.Node, web.Image, err, pushed, id)
	}
}
