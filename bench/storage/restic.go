package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"
)

// restic times restic backing up the file into a local repository and
// restoring it, each as one restic process.
func (b *bench) restic(ctx context.Context) error {
	repo := filepath.Join(b.dir, "restic-repo")
	env := append(os.Environ(),
		"RESTIC_REPOSITORY="+repo,
		"RESTIC_PASSWORD=bench-password",
		"RESTIC_CACHE_DIR="+filepath.Join(b.dir, "restic-cache"),
	)
	runRestic := func(args ...string) (time.Duration, *os.ProcessState, error) {
		cmd := exec.CommandContext(ctx, b.c.restic, args...)
		cmd.Env = env
		var stderr strings.Builder
		cmd.Stderr = &stderr
		start := time.Now()
		err := cmd.Run()
		d := time.Since(start)
		if err != nil {
			return 0, nil, fmt.Errorf("restic %s: %w: %s", strings.Join(args, " "), err, stderr.String())
		}
		return d, cmd.ProcessState, nil
	}
	if _, _, err := runRestic("init", "--quiet"); err != nil {
		return err
	}
	load := loadAvg()
	d, ps, err := runRestic("backup", "--quiet", b.src)
	if err != nil {
		return err
	}
	b.add(result{Phase: "restic-backup", Seconds: d.Seconds(), MaxRSS: maxRSS(ps), CPU: cpuSeconds(ps), Load: load})
	target := filepath.Join(b.dir, "restic-out")
	load = loadAvg()
	if d, ps, err = runRestic("restore", "--quiet", "latest", "--target", target); err != nil {
		return err
	}
	r := result{Phase: "restic-restore", Seconds: d.Seconds(), MaxRSS: maxRSS(ps), CPU: cpuSeconds(ps), Load: load}
	// restic restores the absolute path below the target.
	out := filepath.Join(target, b.src)
	if r.Verified, err = b.verify(out); err != nil {
		return err
	}
	if !r.Verified {
		return fmt.Errorf("restic restore: %s differs from the file backed up (SHA-256)", out)
	}
	b.add(r)
	return nil
}

// add records a result, filling in its throughput.
func (b *bench) add(r result) {
	r.MBps = float64(b.c.size) / 1e6 / r.Seconds
	b.rep.Results = append(b.rep.Results, r)
}
