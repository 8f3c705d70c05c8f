package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/zerogrid/zerogrid/internal/storage/catalog"
	"github.com/zerogrid/zerogrid/internal/storage/fusefs"
)

// FUSE benchmark (-fuse): the file is copied into a FUSE mount of a store
// over k+m directory backends (write: open, copy in 1 MiB writes, fsync,
// close, so the time includes the upload and the commit), then read back
// through a fresh mount (so no page cache helps) and hashed. Each mount is
// its own child process (-phase fuse or fuse-init), so the peak RSS
// reported for a phase is that of the process serving the mount, store
// included; the copying is done by this process.

// fuseBench runs the FUSE write and read phases.
func (b *bench) fuseBench(ctx context.Context) error {
	var lines []string
	for i := range b.c.k + b.c.m {
		lines = append(lines, fmt.Sprintf("{id: f%02d, type: dir, layout: %s, path: %q, domain: disk%02d}", i, b.c.layout, filepath.Join(b.dir, "fusedirs", fmt.Sprintf("f%02d", i)), i))
	}
	cfg, err := b.writeConfig("fuse.yaml", lines)
	if err != nil {
		return err
	}
	mnt := filepath.Join(b.dir, "mnt")
	if err := os.MkdirAll(mnt, 0o755); err != nil {
		return err
	}
	target := filepath.Join(mnt, "bench")
	err = b.fusePhase(ctx, "fuse-write", "fuse-init", cfg, mnt, func() (bool, error) {
		return false, copyInto(b.src, target)
	})
	if err != nil {
		return err
	}
	err = b.fusePhase(ctx, "fuse-read", "fuse", cfg, mnt, func() (bool, error) {
		return b.verify(target)
	})
	if err != nil {
		return err
	}
	return os.RemoveAll(filepath.Join(b.dir, "fusedirs"))
}

func copyInto(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.CopyBuffer(out, in, make([]byte, 1<<20)); err != nil {
		out.Close()
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return fmt.Errorf("fsync through the mount: %w", err)
	}
	return out.Close()
}

// fusePhase starts a mount child, times fn, stops the child and records
// the phase.
func (b *bench) fusePhase(ctx context.Context, name, phase, cfg, mnt string, fn func() (bool, error)) error {
	load := loadAvg()
	args := []string{"-phase", phase, "-config", cfg, "-file", mnt}
	if b.c.cpuprofile != "" {
		args = append(args, "-cpuprofile", b.c.cpuprofile+"."+name)
	}
	cmd := exec.CommandContext(ctx, b.exe, args...)
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
	defer func() {
		if cmd.ProcessState == nil {
			cmd.Process.Kill()
			cmd.Wait()
			exec.Command("fusermount3", "-u", "-z", mnt).Run()
		}
	}()
	if line, err := bufio.NewReader(stdout).ReadString('\n'); err != nil || strings.TrimSpace(line) != "mounted" {
		return fmt.Errorf("%s: mount child said %q: %v", name, line, err)
	}
	start := time.Now()
	verified, err := fn()
	secs := time.Since(start).Seconds()
	if err != nil {
		return fmt.Errorf("%s: %w", name, err)
	}
	stdin.Close()
	if err := cmd.Wait(); err != nil {
		return fmt.Errorf("%s: mount child: %w", name, err)
	}
	if name == "fuse-read" && !verified {
		return fmt.Errorf("%s: file read through the mount differs from the one written (SHA-256)", name)
	}
	b.add(result{Phase: name, Seconds: secs, MaxRSS: maxRSS(cmd.ProcessState), CPU: cpuSeconds(cmd.ProcessState), Load: load, Verified: verified})
	return nil
}

// serveFUSE is the mount child: it opens (fuse) or creates (fuse-init) the
// store of c.cfg, mounts it at c.file, says "mounted", and unmounts when
// stdin is closed.
func serveFUSE(ctx context.Context, c config) error {
	cfg, err := catalog.LoadConfig(c.cfg)
	if err != nil {
		return err
	}
	secret, err := catalog.StorageSecret(testMnemonic)
	if err != nil {
		return err
	}
	defer clear(secret)
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
	bs, err := cfg.OpenBackends(log)
	if err != nil {
		return err
	}
	defer catalog.CloseBackends(bs)
	open := catalog.Open
	if c.phase == "fuse-init" {
		open = catalog.Init
	}
	s, err := open(ctx, catalog.Options{Params: cfg.Params(), Backends: bs, Logger: log}, secret)
	if err != nil {
		return fmt.Errorf("open store: %w", err)
	}
	defer s.Close()
	srv, err := fusefs.Mount(c.file, s, fusefs.Options{CacheDir: filepath.Join(filepath.Dir(c.file), "fuse-cache"), Logger: log})
	if err != nil {
		return err
	}
	if c.cpuprofile != "" {
		f, err := os.Create(c.cpuprofile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Println("mounted")
	_, _ = io.Copy(io.Discard, os.Stdin)
	err = fusefs.Unmount(srv, c.file, 5*time.Second, 5*time.Second)
	if errors.Is(err, fusefs.ErrLingering) {
		return nil // exiting closes the connection
	}
	return err
}

// printFUSETargets states the FUSE target against the figures.
func (b *bench) printFUSETargets(w io.Writer) {
	for _, x := range b.rep.Results {
		ok := "met"
		if x.MBps < 150 {
			ok = "NOT met"
		}
		fmt.Fprintf(w, "target %s >= 150 MB/s: %.0f MB/s %s; peak RSS of the mount process %.0f MiB\n", x.Phase, x.MBps, ok, float64(x.MaxRSS)/mib)
	}
}
