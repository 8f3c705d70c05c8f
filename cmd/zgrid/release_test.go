package main

import (
	"encoding/json"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zerogrid/zerogrid/internal/release"
)

// TestReleaseCLI walks a release manager's life: keys, init, an offline
// publish, push to a hub, status, a root rotation.
func TestReleaseCLI(t *testing.T) {
	t.Setenv("ZGRID_PASSPHRASE", "release manager passphrase")
	dir := t.TempDir()
	key := func(name string) string { return filepath.Join(dir, name+".key") }
	for _, k := range []struct{ name, role string }{{"root1", "root"}, {"root2", "root"}, {"root3", "root"}, {"root4", "root"},
		{"root5", "root"}, {"targets", "targets"}, {"snapshot", "snapshot"}, {"timestamp", "timestamp"}} {
		if out, errb, err := run(t, "release", "keys", "new", "--role", k.role, "--out", key(k.name)); err != nil || !strings.HasPrefix(out, "zgpub1") {
			t.Fatalf("keys new %s: %q %v %s", k.name, out, err, errb)
		}
	}
	if _, _, err := run(t, "release", "keys", "new", "--role", "admin", "--out", key("x")); err == nil {
		t.Fatal("a key of an unknown role was made")
	}
	repo := filepath.Join(dir, "repo")
	initArgs := func(targets string) []string {
		return []string{"release", "init", "--repo", repo, "--root-keys", key("root1") + "," + key("root2") + "," + key("root3"),
			"--targets-keys", targets, "--snapshot-key", key("snapshot"), "--timestamp-key", key("timestamp")}
	}
	if _, _, err := run(t, initArgs(key("timestamp"))...); err == nil || !strings.Contains(err.Error(), "not a release-targets key") {
		t.Fatalf("init with a timestamp key as targets key: %v", err)
	}
	if _, errb, err := run(t, initArgs(key("targets"))...); err != nil {
		t.Fatalf("init: %v %s", err, errb)
	}
	bin := filepath.Join(dir, "zgridd")
	os.WriteFile(bin, []byte("a node release"), 0o755)
	signing := key("targets") + "," + key("snapshot") + "," + key("timestamp")
	if _, _, err := run(t, "release", "publish", "--repo", repo, "--version", "1", "--keys", key("root1")+","+key("snapshot")+","+key("timestamp"), "zgridd-linux-amd64="+bin); err == nil {
		t.Fatal("published with a root key in place of the targets key")
	}
	if out, errb, err := run(t, "release", "publish", "--repo", repo, "--version", "1", "--min-version", "1", "--keys", signing, "--sign-only", "--hub", "http://127.0.0.1:1", "zgridd-linux-amd64="+bin); err != nil || strings.Contains(out, "pushed") {
		t.Fatalf("publish --sign-only: %q %v %s", out, err, errb)
	}
	root, _ := os.ReadFile(filepath.Join(repo, "root.json"))
	h := &release.Handler{Dir: filepath.Join(dir, "hub"), Root: root}
	if err := h.Init(); err != nil {
		t.Fatal(err)
	}
	hub := httptest.NewServer(h)
	defer hub.Close()
	if out, errb, err := run(t, "release", "push", "--repo", repo, "--hub", hub.URL); err != nil || !strings.Contains(out, "accepted") {
		t.Fatalf("push: %q %v %s", out, err, errb)
	}
	out, _, err := run(t, "release", "status", "--repo", repo, "-o", "json")
	if err != nil {
		t.Fatal(err)
	}
	var st release.Status
	if err := json.Unmarshal([]byte(out), &st); err != nil {
		t.Fatalf("status -o json: %v\n%s", err, out)
	}
	if len(st.Targets) != 1 || st.Targets[0].Version != "1" || st.Targets[0].MinVersion != "1" || st.Roles[0].Role != "root" ||
		st.Roles[0].Threshold != 2 || len(st.Roles[0].SignedBy) != 3 {
		t.Fatalf("status: %+v", st)
	}
	if out, _, err := run(t, "release", "status", "--repo", repo); err != nil || !strings.Contains(out, "zgridd-linux-amd64") || !strings.Contains(out, "threshold 2") {
		t.Fatalf("status: %q %v", out, err)
	}
	// Rotate the root to root3,root4,root5: signed by two old and two new keys.
	if _, errb, err := run(t, "release", "rotate", "--repo", repo, "--old-root-keys", key("root1")+","+key("root2"),
		"--root-keys", key("root3")+","+key("root4")+","+key("root5")); err != nil {
		t.Fatalf("rotate: %v %s", err, errb)
	}
	if _, errb, err := run(t, "release", "refresh", "--repo", repo, "--keys", key("snapshot")+","+key("timestamp"), "--hub", hub.URL); err != nil {
		t.Fatalf("refresh: %v %s", err, errb)
	}
	if _, err := os.Stat(filepath.Join(dir, "hub", "2.root.json")); err != nil {
		t.Fatalf("the hub does not serve the rotated root: %v", err)
	}
}
