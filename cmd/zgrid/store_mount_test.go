package main

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// TestStoreMountProcess runs `zgrid store mount` as a process: a shard
// removed from a backend while it runs is rebuilt by its background
// repair; a file written through the mount is in `zgrid store ls` after
// SIGTERM, and the mount is gone.
func TestStoreMountProcess(t *testing.T) {
	z := startMount(t, "--repair-every", "500ms")
	cfg, shards, mnt, m, stderr, exited := z.cfg, z.shards, z.mnt, z.cmd, z.stderr, z.exited
	run := func(args ...string) string { t.Helper(); return z.run(t, args...) }
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

// mountProc is a `zgrid store mount` process over a fresh store.
type mountProc struct {
	bin, cfg, shards, mnt string
	env                   []string
	cmd                   *exec.Cmd
	stderr                *syncBuffer
	exited                chan error
}

func (z *mountProc) run(t *testing.T, args ...string) string {
	t.Helper()
	c := exec.Command(z.bin, args...)
	c.Env = z.env
	out, err := c.CombinedOutput()
	if err != nil {
		t.Fatalf("zgrid %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// startMount builds zgrid, initialises a store and mounts it with the
// extra flags; it returns once the mount answers.
func startMount(t *testing.T, flags ...string) *mountProc {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root to mount FUSE")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("needs /dev/fuse: %v", err)
	}
	z := &mountProc{bin: zgridBinary(t), mnt: t.TempDir(), stderr: &syncBuffer{}, exited: make(chan error, 1)}
	z.cfg, z.shards = storeConfig(t)
	z.env = append(os.Environ(), "ZGRID_MNEMONIC="+mnemonic(t))
	z.run(t, "store", "init", "--config", z.cfg)
	args := append([]string{"store", "mount", "--config", z.cfg, "--cache-dir", t.TempDir()}, flags...)
	z.cmd = exec.Command(z.bin, append(args, z.mnt)...)
	z.cmd.Env = z.env
	z.cmd.Stderr = z.stderr
	stdout, err := z.cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := z.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		z.cmd.Process.Kill()
		exec.Command("fusermount3", "-u", "-z", z.mnt).Run()
	})
	lines := bufio.NewScanner(stdout)
	if !lines.Scan() || lines.Text() != "mounted at "+z.mnt {
		t.Fatalf("first line %q, want \"mounted at %s\"; stderr: %s", lines.Text(), z.mnt, z.stderr.String())
	}
	go func() { z.exited <- z.cmd.Wait() }()
	return z
}

// TestStoreMountSIGTERMOpenWriter: SIGTERM while a file is open for
// writing (never closed, never fsynced) stores what was written, exits 0
// and leaves no dead mount behind.
func TestStoreMountSIGTERMOpenWriter(t *testing.T) {
	z := startMount(t)
	f, err := os.Create(filepath.Join(z.mnt, "open.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	data := bytes.Repeat([]byte("acknowledged write\n"), 30000)
	if _, err := f.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := z.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-z.exited:
		if err != nil {
			t.Fatalf("mount exited: %v; stderr: %s", err, z.stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Fatalf("mount did not exit 30 s after SIGTERM; stderr: %s", z.stderr.String())
	}
	if mounts, _ := os.ReadFile("/proc/self/mounts"); strings.Contains(string(mounts), " "+z.mnt+" ") {
		t.Fatalf("%s still mounted after exit", z.mnt)
	}
	if _, err := os.ReadDir(z.mnt); err != nil {
		t.Fatalf("mount point after exit: %v", err)
	}
	got := filepath.Join(t.TempDir(), "got")
	z.run(t, "store", "get", "--config", z.cfg, "open.log", got)
	if b, _ := os.ReadFile(got); !bytes.Equal(b, data) {
		t.Fatalf("store holds %d bytes of the open file, %d were written", len(b), len(data))
	}
}

var built struct {
	once sync.Once
	bin  string
	err  error
}

// zgridBinary builds zgrid once per test run.
func zgridBinary(t *testing.T) string {
	t.Helper()
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "zgrid-bin-")
		if err != nil {
			built.err = err
			return
		}
		built.bin = filepath.Join(dir, "zgrid")
		if out, err := exec.Command("go", "build", "-o", built.bin, ".").CombinedOutput(); err != nil {
			built.err = fmt.Errorf("build zgrid: %v\n%s", err, out)
		}
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.bin
}
