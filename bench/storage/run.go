package main

import (
	"bufio"
	"context"
	crand "crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"time"
)

// result is one measured phase.
type result struct {
	Phase    string  `json:"phase"` // put-dir, get-dir, put-zdb, get-zdb, restic-backup, restic-restore
	Seconds  float64 `json:"seconds"`
	MBps     float64 `json:"mb_per_s"` // 10^6 bytes of the file per second
	MaxRSS   int64   `json:"max_rss_bytes"`
	CPU      float64 `json:"cpu_seconds"` // user+system of the whole child process (store phases: open included)
	Load     string  `json:"load_avg"`    // /proc/loadavg 1, 5, 15 min at the phase's start
	Faults   int     `json:"faults,omitempty"`
	Verified bool    `json:"verified,omitempty"` // read back and equal by SHA-256 (get and restore)
}

// report is the whole run.
type report struct {
	Date       time.Time `json:"date"`
	GoVersion  string    `json:"go_version"`
	NumCPU     int       `json:"num_cpu"`
	Size       int64     `json:"size_bytes"`
	K          int       `json:"k"`
	M          int       `json:"m"`
	Segment    int       `json:"segment_size"`
	Restic     string    `json:"restic_version"`
	Results    []result  `json:"results"`
	ZDBMaxRSS  int64     `json:"zdb_servers_max_rss_bytes"` // the child running all k+m zdb servers
	ZDBCPU     float64   `json:"zdb_servers_cpu_seconds"`   // its user+system time over put-zdb and get-zdb
	GenSeconds float64   `json:"generate_seconds"`
}

// bench holds a run's shared state.
type bench struct {
	c   config
	exe string
	dir string
	src string
	sum [sha256.Size]byte
	rep report
}

func run(ctx context.Context, c config) error {
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp(c.tmp, "zgrid-bench-storage-")
	if err != nil {
		return err
	}
	if !c.keep {
		defer os.RemoveAll(dir)
	}
	ver, err := exec.Command(c.restic, "version").Output()
	if err != nil {
		return fmt.Errorf("%s version: %w (install restic: apt-get install -y restic)", c.restic, err)
	}
	b := &bench{c: c, exe: exe, dir: dir, src: filepath.Join(dir, "src.bin")}
	b.rep = report{Date: time.Now().UTC(), GoVersion: runtime.Version(), NumCPU: runtime.NumCPU(), Size: c.size,
		K: c.k, M: c.m, Segment: c.segment, Restic: strings.TrimSpace(string(ver))}
	start := time.Now()
	if b.sum, err = generate(b.src, c.size); err != nil {
		return fmt.Errorf("generate: %w", err)
	}
	b.rep.GenSeconds = time.Since(start).Seconds()
	steps := []func(context.Context) error{b.dirBackends, b.packBackends, b.zdbBackends, b.restic}
	if c.fuse {
		steps = []func(context.Context) error{b.fuseBench}
	}
	for _, step := range steps {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return b.print(os.Stdout)
}

// generate writes size bytes of ChaCha8 output (incompressible) to path,
// synced, and returns their SHA-256.
func generate(path string, size int64) ([sha256.Size]byte, error) {
	var seed [32]byte
	_, _ = crand.Read(seed[:]) // never fails (crypto/rand)
	f, err := os.Create(path)
	if err != nil {
		return [sha256.Size]byte{}, err
	}
	defer f.Close()
	h := sha256.New()
	w := bufio.NewWriterSize(io.MultiWriter(f, h), 1<<20)
	if _, err := io.CopyN(w, rand.NewChaCha8(seed), size); err != nil {
		return [sha256.Size]byte{}, err
	}
	if err := w.Flush(); err != nil {
		return [sha256.Size]byte{}, err
	}
	if err := f.Sync(); err != nil {
		return [sha256.Size]byte{}, err
	}
	return [sha256.Size]byte(h.Sum(nil)), f.Close()
}

// verify reports whether the file at path has the source's SHA-256.
func (b *bench) verify(path string) (bool, error) {
	f, err := os.Open(path)
	if err != nil {
		return false, err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return false, err
	}
	return [sha256.Size]byte(h.Sum(nil)) == b.sum, nil
}

// child runs this binary with -phase args and returns its stdout and
// process state.
func (b *bench) child(ctx context.Context, args ...string) ([]byte, *os.ProcessState, error) {
	cmd := exec.CommandContext(ctx, b.exe, args...)
	cmd.Stderr = os.Stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, nil, fmt.Errorf("%s: %w", strings.Join(args, " "), err)
	}
	return out, cmd.ProcessState, nil
}

// maxRSS is a finished process's peak resident set (Linux reports KiB).
func maxRSS(ps *os.ProcessState) int64 {
	if ru, ok := ps.SysUsage().(*syscall.Rusage); ok {
		return ru.Maxrss << 10
	}
	return 0
}

// cpuSeconds is a finished process's user plus system CPU time.
func cpuSeconds(ps *os.ProcessState) float64 {
	return (ps.UserTime() + ps.SystemTime()).Seconds()
}

// loadAvg returns the 1, 5 and 15 minute load averages.
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return "?"
	}
	return strings.Join(f[:3], " ")
}

// storePhase runs a put or get child over the store of cfg and records it.
func (b *bench) storePhase(ctx context.Context, name, phase, cfg, file string) error {
	load := loadAvg()
	args := []string{"-phase", phase, "-config", cfg, "-file", file}
	if b.c.cpuprofile != "" {
		args = append(args, "-cpuprofile", b.c.cpuprofile+"."+name)
	}
	out, ps, err := b.child(ctx, args...)
	if err != nil {
		return err
	}
	var pr phaseResult
	if err := json.Unmarshal(out, &pr); err != nil {
		return fmt.Errorf("%s: child output %q: %w", name, out, err)
	}
	if pr.Bytes != b.c.size {
		return fmt.Errorf("%s: %d bytes, want %d", name, pr.Bytes, b.c.size)
	}
	r := result{Phase: name, Seconds: pr.Seconds, MaxRSS: maxRSS(ps), CPU: cpuSeconds(ps), Load: load, Faults: pr.Faults}
	if phase == "get" {
		if r.Verified, err = b.verify(file); err != nil {
			return err
		}
		if !r.Verified {
			return fmt.Errorf("%s: %s differs from the file put (SHA-256)", name, file)
		}
		if err := os.Remove(file); err != nil {
			return err
		}
	}
	b.add(r)
	return nil
}

// writeConfig writes a store config with the given backend lines.
func (b *bench) writeConfig(name string, backends []string) (string, error) {
	var s strings.Builder
	fmt.Fprintf(&s, "k: %d\nm: %d\n", b.c.k, b.c.m)
	if b.c.segment > 0 {
		fmt.Fprintf(&s, "segment_size: %d\n", b.c.segment)
	}
	s.WriteString("backends:\n")
	for _, l := range backends {
		s.WriteString("  - " + l + "\n")
	}
	path := filepath.Join(b.dir, name)
	return path, os.WriteFile(path, []byte(s.String()), 0o600)
}

// dirBackends puts and gets the file over k+m directory backends, one
// file per shard.
func (b *bench) dirBackends(ctx context.Context) error { return b.dirLayout(ctx, "dir", "files") }

// packBackends does the same over directory backends of the packed
// layout (shards appended to data files).
func (b *bench) packBackends(ctx context.Context) error { return b.dirLayout(ctx, "pack", "packed") }

func (b *bench) dirLayout(ctx context.Context, phase, layout string) error {
	var lines []string
	for i := range b.c.k + b.c.m {
		lines = append(lines, fmt.Sprintf("{id: d%02d, type: dir, layout: %s, path: %q, domain: disk%02d}", i, layout, filepath.Join(b.dir, "dirs", fmt.Sprintf("d%02d", i)), i))
	}
	cfg, err := b.writeConfig(phase+".yaml", lines)
	if err != nil {
		return err
	}
	if err := b.storePhase(ctx, "put-"+phase, "put", cfg, b.src); err != nil {
		return err
	}
	if err := b.storePhase(ctx, "get-"+phase, "get", cfg, filepath.Join(b.dir, "out-"+phase+".bin")); err != nil {
		return err
	}
	return os.RemoveAll(filepath.Join(b.dir, "dirs"))
}

// zdbBackends starts k+m zdb servers in a child process, then puts and
// gets the file over them.
func (b *bench) zdbBackends(ctx context.Context) error {
	cmd := exec.CommandContext(ctx, b.exe, "-phase", "zdb", "-k", fmt.Sprint(b.c.k), "-m", fmt.Sprint(b.c.m), "-file", filepath.Join(b.dir, "zdb"))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		return err
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		return err
	}
	if err := cmd.Start(); err != nil {
		return err
	}
	stopped := false
	stop := func() error {
		if stopped {
			return nil
		}
		stopped = true
		stdin.Close()
		return cmd.Wait()
	}
	defer stop()
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		return fmt.Errorf("zdb servers: %w", err)
	}
	var lines []string
	for i, addr := range strings.Fields(line) {
		lines = append(lines, fmt.Sprintf("{id: z%02d, type: zdb, address: %q, namespace: %s, password: %s, domain: zdb%02d}", i, addr, zdbNamespace, zdbPassword, i))
	}
	cfg, err := b.writeConfig("zdb.yaml", lines)
	if err != nil {
		return err
	}
	if err := b.storePhase(ctx, "put-zdb", "put", cfg, b.src); err != nil {
		return err
	}
	if err := b.storePhase(ctx, "get-zdb", "get", cfg, filepath.Join(b.dir, "out-zdb.bin")); err != nil {
		return err
	}
	if err := stop(); err != nil {
		return fmt.Errorf("zdb servers: %w", err)
	}
	b.rep.ZDBMaxRSS, b.rep.ZDBCPU = maxRSS(cmd.ProcessState), cpuSeconds(cmd.ProcessState)
	return os.RemoveAll(filepath.Join(b.dir, "zdb"))
}
