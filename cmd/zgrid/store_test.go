package main

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zerogrid/zerogrid/internal/identity"
)

// storeConfig writes a config of six directory backends, k=4 m=2 and
// 64 KiB segments, and returns its path and the backends' root.
func storeConfig(t *testing.T) (string, string) {
	t.Helper()
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("k: 4\nm: 2\nsegment_size: 65536\nbackends:\n")
	for i := range 6 {
		fmt.Fprintf(&b, "  - {id: b%d, type: dir, path: shards/b%d, domain: rack%d}\n", i, i, i)
	}
	path := filepath.Join(dir, "store.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	return path, filepath.Join(dir, "shards")
}

func mnemonic(t *testing.T) string {
	t.Helper()
	m, err := identity.NewMnemonic(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func treeHash(t *testing.T, root string) map[string][32]byte {
	t.Helper()
	out := map[string][32]byte{}
	err := filepath.WalkDir(root, func(p string, e fs.DirEntry, err error) error {
		if err != nil || e.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		out[p] = sha256.Sum256(b)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCLIStore(t *testing.T) {
	cfg, shards := storeConfig(t)
	t.Setenv("ZGRID_MNEMONIC", mnemonic(t))
	work := t.TempDir()
	files := map[string][]byte{"empty": {}, "one": {1}, "docs/big.bin": make([]byte, 300<<10+7)}
	rand.Read(files["docs/big.bin"])
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(work, strings.ReplaceAll(name, "/", "_")), data, 0o640); err != nil {
			t.Fatal(err)
		}
	}

	if _, _, err := run(t, "store", "ls", "--config", cfg); err == nil || !strings.Contains(err.Error(), "never initialised: nothing written") {
		t.Fatalf("ls before init: %v", err)
	}
	if out, _, err := run(t, "store", "init", "--config", cfg); err != nil || !strings.Contains(out, "initialised") {
		t.Fatalf("init: %q %v", out, err)
	}
	if _, _, err := run(t, "store", "init", "--config", cfg); err == nil || !strings.Contains(err.Error(), "already initialised") {
		t.Fatalf("second init: %v", err)
	}
	for name := range files {
		src := filepath.Join(work, strings.ReplaceAll(name, "/", "_"))
		if out, stderr, err := run(t, "store", "put", "--config", cfg, src, name); err != nil || stderr != "" {
			t.Fatalf("put %s: %q %q %v", name, out, stderr, err)
		}
	}
	out, _, err := run(t, "store", "ls", "--config", cfg, "docs/", "-o", "json")
	var ls []lsEntry
	if err != nil || json.Unmarshal([]byte(out), &ls) != nil || len(ls) != 1 || ls[0].Name != "docs/big.bin" || ls[0].Size != 300<<10+7 || ls[0].Mode != "0640" {
		t.Fatalf("ls -o json: %q %v", out, err)
	}
	out, _, err = run(t, "store", "ls", "--config", cfg)
	if err != nil || strings.Count(out, "\n") != 3 || !strings.Contains(out, " one\n") {
		t.Fatalf("ls: %q %v", out, err)
	}

	// A new process knows only the mnemonic and the config: run does that.
	for name, data := range files {
		dst := filepath.Join(work, "out-"+strings.ReplaceAll(name, "/", "_"))
		if _, _, err := run(t, "store", "get", "--config", cfg, name, dst); err != nil {
			t.Fatalf("get %s: %v", name, err)
		}
		got, err := os.ReadFile(dst)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("get %s: %d bytes, %v", name, len(got), err)
		}
	}
	dst := filepath.Join(work, "missing")
	if _, _, err := run(t, "store", "get", "--config", cfg, "nope", dst); err == nil || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("get missing: %v", err)
	}
	if _, err := os.Stat(dst); !os.IsNotExist(err) {
		t.Fatalf("failed get left %s: %v", dst, err)
	}

	// The wrong mnemonic: a clear error and not one byte written.
	before := treeHash(t, shards)
	t.Setenv("ZGRID_MNEMONIC", mnemonic(t))
	src := filepath.Join(work, "one")
	for _, args := range [][]string{{"put", "--config", cfg, src, "x"}, {"init", "--config", cfg}, {"ls", "--config", cfg}} {
		_, _, err := run(t, append([]string{"store"}, args...)...)
		if err == nil || !strings.Contains(err.Error(), "nothing written") {
			t.Fatalf("%s with the wrong mnemonic: %v", args[0], err)
		}
	}
	after := treeHash(t, shards)
	if len(after) != len(before) {
		t.Fatalf("wrong mnemonic changed the backends: %d objects, then %d", len(before), len(after))
	}
	for p, h := range before {
		if after[p] != h {
			t.Fatalf("wrong mnemonic changed %s", p)
		}
	}
}

// TestCLIStoreDegraded: a backend whose directory cannot be opened is one
// backend down: a put succeeds with m−1 down, a get with m down.
func TestCLIStoreDegraded(t *testing.T) {
	cfg, shards := storeConfig(t)
	t.Setenv("ZGRID_MNEMONIC", mnemonic(t))
	if _, _, err := run(t, "store", "init", "--config", cfg); err != nil {
		t.Fatal(err)
	}
	breakDir := func(name string) {
		t.Helper()
		p := filepath.Join(shards, name)
		if err := os.Rename(p, p+".away"); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, nil, 0o600); err != nil { // a file where the directory was
			t.Fatal(err)
		}
	}
	data := make([]byte, 200<<10)
	rand.Read(data)
	src := filepath.Join(t.TempDir(), "src")
	if err := os.WriteFile(src, data, 0o600); err != nil {
		t.Fatal(err)
	}
	breakDir("b2")
	_, stderr, err := run(t, "store", "put", "--config", cfg, src, "f")
	if err != nil || !strings.Contains(stderr, "shards could not be stored") {
		t.Fatalf("put with one backend down: %q %v", stderr, err)
	}
	breakDir("b5")
	dst := filepath.Join(t.TempDir(), "dst")
	if _, _, err := run(t, "store", "get", "--config", cfg, "f", dst); err != nil {
		t.Fatalf("get with two backends down: %v", err)
	}
	if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("get: %d bytes, %v", len(got), err)
	}
}

func TestCLIStoreConfigErrors(t *testing.T) {
	t.Setenv("ZGRID_MNEMONIC", mnemonic(t))
	dir := t.TempDir()
	cfg := filepath.Join(dir, "store.yaml")
	if err := os.WriteFile(cfg, []byte("k: 4\nm: 2\nbackends:\n  - {id: b1, type: dir, path: p, colour: red}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, "store", "init", "--config", cfg); err == nil || !strings.Contains(err.Error(), cfg+":4: field colour not found") {
		t.Fatalf("unknown field: %v", err)
	}
	if _, _, err := run(t, "store", "init"); err == nil || !strings.Contains(err.Error(), "--config") {
		t.Fatalf("no config: %v", err)
	}
	t.Setenv("ZGRID_MNEMONIC", "not a mnemonic")
	if err := os.WriteFile(cfg, []byte("k: 2\nm: 1\nbackends:\n  - {id: b1, type: dir, path: p}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, _, err := run(t, "store", "init", "--config", cfg); err == nil || !strings.Contains(err.Error(), "mnemonic") {
		t.Fatalf("bad mnemonic: %v", err)
	}
}
