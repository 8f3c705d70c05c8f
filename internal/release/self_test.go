package release

import (
	"context"
	"crypto/sha256"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestUpdater(t *testing.T) {
	f := newFixture(t)
	one, two := []byte("release one"), []byte("release two")
	f.publish("1", one)
	u := &Updater{Client: f.client, Self: sha256.Sum256(one)}
	u.Init()
	if u.Version() != "" {
		t.Fatalf("version %q before any check", u.Version())
	}
	if up := u.Step(context.Background()); up != nil || u.Version() != "1" || len(u.Conditions()) != 0 {
		t.Fatalf("running release 1: update %v, version %q, conditions %v", up, u.Version(), u.Conditions())
	}
	// A restart knows its version without the network.
	u2 := &Updater{Client: f.client, Self: sha256.Sum256(one)}
	u2.Init()
	if u2.Version() != "1" {
		t.Fatalf("after a restart: version %q", u2.Version())
	}

	// A cached root damaged by a crash: the client starts again from the
	// root it was given.
	if err := os.WriteFile(filepath.Join(f.client.Dir, "root.json"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	f.publish("2", two)
	rel, err := f.client.Check(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	f.proxy.set("/tuf/"+filepath.ToSlash(targetPath(rel.Name, two)), []byte("release 2!!"))
	if up := u.Step(context.Background()); up != nil {
		t.Fatal("a tampered release was handed over")
	}
	conds := u.Conditions()
	if len(conds) != 1 || conds[0].Type != CondRefused || !strings.Contains(conds[0].Reason, ReasonHash) || u.Version() != "1" {
		t.Fatalf("after a tampered fetch: conditions %v, version %q", conds, u.Version())
	}
	f.proxy.reset()
	up := u.Step(context.Background())
	if up == nil || up.Release.Version != "2" || string(up.Binary) != string(two) || len(u.Conditions()) != 0 {
		t.Fatalf("release 2: %+v, conditions %v", up, u.Conditions())
	}

	// A minimum version above the running one closes the node to new contracts.
	if err := f.repo.Publish("3", "3", []File{{Name: "zgridd-test", Data: []byte("release three")}}, f.signers(2)); err != nil {
		t.Fatal(err)
	}
	f.push()
	if up := u.Step(context.Background()); up == nil {
		t.Fatal("release 3 not handed over")
	}
	if err := u.BelowMinimum(); err == nil || !strings.Contains(err.Error(), "release 3 or newer is required; this node runs 1") {
		t.Fatalf("BelowMinimum: %v", err)
	}
}

// TestUpdaterRefusesOlder: a release older than the one running (which
// TUF alone would allow, e.g. signed by a compromised threshold of
// targets keys) is refused.
func TestUpdaterRefusesOlder(t *testing.T) {
	f := newFixture(t)
	f.publish("5", []byte("five"))
	u := &Updater{Client: f.client, Self: sha256.Sum256([]byte("six"))}
	u.remember(&Release{Version: "6", SHA256: sha256.Sum256([]byte("six"))})
	u.Init()
	if up := u.Step(context.Background()); up != nil {
		t.Fatal("an older release was handed over")
	}
	if c := u.Conditions(); len(c) != 1 || !strings.Contains(c[0].Reason, ReasonOlder) {
		t.Fatalf("conditions %v", c)
	}
}

// TestExecMemory re-runs the test binary, which replaces itself with a
// program held only in a sealed memory file.
func TestExecMemory(t *testing.T) {
	if os.Getenv("ZEROGRID_EXEC_MEMORY") == "1" {
		bin, err := os.ReadFile("/bin/echo")
		if err != nil {
			os.Exit(3)
		}
		up := &Update{Release: &Release{Version: "7", SHA256: sha256.Sum256(bin)}, Binary: bin}
		err = ExecMemory(up, []string{"echo", "ran from memory"}, nil)
		os.Stderr.WriteString(err.Error())
		os.Exit(2)
	}
	if _, err := os.Stat("/bin/echo"); err != nil {
		t.Skip("no /bin/echo to run")
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestExecMemory$")
	cmd.Env = append(os.Environ(), "ZEROGRID_EXEC_MEMORY=1")
	out, err := cmd.CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "ran from memory" {
		t.Fatalf("exec from memory: %v: %q", err, out)
	}
	// Bytes that do not hash to the signed SHA-256 are never executed.
	up := &Update{Release: &Release{Version: "7"}, Binary: []byte("not it")}
	if err := ExecMemory(up, []string{"x"}, nil); err == nil || errors.Is(err, os.ErrNotExist) {
		t.Fatalf("ExecMemory of unverified bytes: %v", err)
	}
}
