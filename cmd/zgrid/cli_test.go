package main

import (
	"bytes"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zerogrid/zerogrid/internal/ledger/ledgertest"
	zgnode "github.com/zerogrid/zerogrid/internal/node"
)

// run executes zgrid with args and returns stdout, stderr and the error.
func run(t *testing.T, args ...string) (string, string, error) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd := newRoot(&out, &errb)
	cmd.SetArgs(args)
	err := cmd.ExecuteContext(t.Context())
	return out.String(), errb.String(), err
}

func TestCLIKeyTwinChain(t *testing.T) {
	t.Setenv("ZGRID_PASSPHRASE", "correct horse battery staple")
	url := startLedger(t)
	key := filepath.Join(t.TempDir(), "me.key")

	out, stderr, err := run(t, "key", "new", "--out", key)
	if err != nil || !strings.HasPrefix(out, "zgpub1") {
		t.Fatalf("key new: %q %v", out, err)
	}
	pub := strings.TrimSpace(out)
	if words := strings.Fields(strings.SplitN(stderr, "\n\n", 3)[1]); len(words) != 24 {
		t.Fatalf("mnemonic on stderr: %q", stderr)
	}
	if _, _, err := run(t, "key", "new", "--out", key); err == nil || !strings.Contains(err.Error(), "already exists") {
		t.Fatalf("overwrite: %v", err)
	}

	out, _, err = run(t, "--ledger", url, "--key", key, "twin", "register")
	if err != nil || strings.TrimSpace(out) != "1" {
		t.Fatalf("twin register: %q %v", out, err)
	}
	_, _, err = run(t, "--ledger", url, "--key", key, "twin", "register")
	if err == nil || !strings.Contains(err.Error(), "already registered") {
		t.Fatalf("second register: %v", err)
	}

	out, _, err = run(t, "--ledger", url, "--key", key, "twin", "show", "-o", "json")
	var tw struct {
		ID   uint64 `json:"id"`
		Root string `json:"root_key"`
	}
	if err != nil || json.Unmarshal([]byte(out), &tw) != nil || tw.ID != 1 || tw.Root != pub {
		t.Fatalf("twin show: %q %v", out, err)
	}

	dev := filepath.Join(t.TempDir(), "laptop.key")
	out, _, err = run(t, "--ledger", url, "--key", key, "twin", "add-device", "--out", dev, "--name", "laptop")
	devPub := strings.TrimSpace(out)
	if err != nil || !strings.HasPrefix(devPub, "zgpub1") {
		t.Fatalf("add-device: %q %v", out, err)
	}
	// The device key acts for the twin until it is revoked.
	if _, _, err = run(t, "--ledger", url, "--key", dev, "name", "claim", "laptop-name"); err != nil {
		t.Fatalf("claim with device key: %v", err)
	}
	if _, _, err = run(t, "--ledger", url, "--key", key, "twin", "revoke-key", devPub); err != nil {
		t.Fatalf("revoke: %v", err)
	}
	_, _, err = run(t, "--ledger", url, "--key", dev, "name", "claim", "after-revoke")
	if err == nil || !strings.Contains(err.Error(), "revoked") {
		t.Fatalf("revoked device key still signs: %v", err)
	}

	// The twin creates a farm and approves a node key for it.
	nodeKey := filepath.Join(t.TempDir(), "node.key")
	out, _, err = run(t, "key", "new", "--kind", "node", "--out", nodeKey)
	if err != nil || !strings.HasPrefix(out, "zgnode1") {
		t.Fatalf("node key: %q %v", out, err)
	}
	nodePub := strings.TrimSpace(out)
	if out, _, err = run(t, "--ledger", url, "--key", key, "farm", "create", "home"); err != nil || strings.TrimSpace(out) != "1" {
		t.Fatalf("farm create: %q %v", out, err)
	}
	apFile := filepath.Join(t.TempDir(), "approval.json")
	if _, _, err = run(t, "--ledger", url, "--key", key, "farm", "approve-node", "--farm", "1", "--node", nodePub, "--out", apFile); err != nil {
		t.Fatalf("approve-node: %v", err)
	}
	ap, err := zgnode.ReadApprovalFile(apFile)
	if err != nil || ap.Body.Farm != 1 || ap.Body.Node.NodeString() != nodePub {
		t.Fatalf("approval file: %+v %v", ap, err)
	}
	// It carries the farm owner's verified view of the chain for the node.
	if ap.Trust == nil || ap.Trust.Chain != ap.Body.Chain || ap.Trust.Height < 1 {
		t.Fatalf("approval file has no trust root for the node: %+v", ap.Trust)
	}

	out, _, err = run(t, "--ledger", url, "chain", "status", "-o", "json")
	var st struct {
		Height     int64  `json:"height"`
		AppHash    string `json:"app_hash"`
		Validators []any  `json:"validators"`
	}
	if err != nil || json.Unmarshal([]byte(out), &st) != nil || st.Height < 1 || st.AppHash == "" || len(st.Validators) != 1 {
		t.Fatalf("chain status: %q %v", out, err)
	}
}

func TestCLIErrorsSayWhatToDo(t *testing.T) {
	t.Setenv("ZGRID_PASSPHRASE", "correct horse battery staple")
	dir := t.TempDir()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"key", "new"}, "--out FILE is required"},
		{[]string{"--key", filepath.Join(dir, "missing.key"), "twin", "show"}, "zgrid key new"},
		{[]string{"--ledger", "http://127.0.0.1:1", "chain", "status"}, "zgridd chain"},
		{[]string{"-o", "yaml", "chain", "status"}, "want text or json"},
		{[]string{"name", "claim", "Not_A_Label"}, "a-z, 0-9"},
	}
	for _, c := range cases {
		_, _, err := run(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("zgrid %s: got %v, want an error mentioning %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}

// startLedger runs a ledger for the test and points zgrid's trusted state
// (ZGRID_TRUST) at a file seeded from it.
func startLedger(t *testing.T) string {
	c := ledgertest.Start(t, nil)
	t.Setenv("ZGRID_TRUST", ledgertest.TrustFile(t, c))
	return c.URL()
}
