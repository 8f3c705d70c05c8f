package main

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestStoreMountProcess runs `zgrid store mount` as a process: a shard
// removed from a backend while it runs is rebuilt by its background
// repair; a file written through the mount is in `zgrid store ls` after
// SIGTERM, and the mount is gone.
func TestStoreMountProcess(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount FUSE")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("needs /dev/fuse: %v", err)
	}
	bin := filepath.Join(t.TempDir(), "zgrid")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("build zgrid: %v\n%s", err, out)
	}
	cfg, shards := storeConfig(t)
	env := append(os.Environ(), "ZGRID_MNEMONIC="+mnemonic(t))
	run := func(args ...string) string {
		t.Helper()
		c := exec.Command(bin, args...)
		c.Env = env
		out, err := c.CombinedOutput()
		if err != nil {
			t.Fatalf("zgrid %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	run("store", "init", "--config", cfg)
	mnt := t.TempDir()
	m := exec.Command(bin, "store", "mount", "--config", cfg, "--cache-dir", t.TempDir(), "--repair-every", "500ms", mnt)
	m.Env = env
	var stderr syncBuffer
	m.Stderr = &stderr
	stdout, err := m.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := m.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	t.Cleanup(func() {
		m.Process.Kill()
		exec.Command("fusermount3", "-u", "-z", mnt).Run()
	})
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "mounted at "+mnt {
		t.Fatalf("first line %q, want \"mounted at %s\"; stderr: %s", lines.Text(), mnt, stderr.String())
	}
	go func() { exited <- m.Wait() }()
	data := bytes.Repeat([]byte("zerogrid "), 50000)
	if err := os.MkdirAll(filepath.Join(mnt, "docs"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(mnt, "docs/note.txt"), data, 0o644); err != nil {
		t.Fatal(err)
	}
	// Take a shard away: the mount's background repair puts it back.
	time.Sleep(700 * time.Millisecond) // a repair pass over the new file's shards first
	victim := ""
	entries, _ := os.ReadDir(filepath.Join(shards, "b0"))
	for _, e := range entries {
		n := e.Name()
		if e.Type().IsRegular() && !strings.HasPrefix(n, ".") && !strings.HasPrefix(n, "root-") && !strings.HasPrefix(n, "lock-") && !strings.HasPrefix(n, "gc-") {
			victim = filepath.Join(shards, "b0", n)
			break
		}
	}
	if victim == "" {
		t.Fatalf("no shard on b0 to remove: %v", entries)
	}
	if err := os.Remove(victim); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for !strings.Contains(stderr.String(), "background repair: 1 shards rebuilt") {
		if time.Now().After(deadline) {
			t.Fatalf("the mount did not repair the removed shard %s; stderr: %s", victim, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	run("store", "check", "--config", cfg) // exits non-zero unless healthy
	if err := m.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Fatalf("mount exited: %v; stderr: %s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("mount did not exit 30 s after SIGTERM; stderr: %s", stderr.String())
	}
	if mounts, _ := os.ReadFile("/proc/self/mounts"); strings.Contains(string(mounts), " "+mnt+" ") {
		t.Fatalf("%s still mounted after exit", mnt)
	}
	if out := run("store", "ls", "--config", cfg); !strings.Contains(out, "docs/note.txt") {
		t.Fatalf("store ls after the mount exited:\n%s", out)
	}
	got := filepath.Join(t.TempDir(), "got")
	run("store", "get", "--config", cfg, "docs/note.txt", got)
	if b, _ := os.ReadFile(got); !bytes.Equal(b, data) {
		t.Fatal("file read back with store get differs")
	}
}
