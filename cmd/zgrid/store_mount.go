package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	rdebug "runtime/debug"
	"time"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/storage/catalog"
	"github.com/zerogrid/zerogrid/internal/storage/fusefs"
)

// unmountWait is how long a stop waits for open files to be closed, after
// it uploaded what they hold, before it detaches the mount lazily; what is
// written in the lingerWait after that is uploaded once more before exit.
const (
	// mountMemoryLimit is the mount's soft Go memory limit unless
	// GOMEMLIMIT sets one.
	mountMemoryLimit = 192 << 20
	unmountWait      = 3 * time.Second
	lingerWait       = 2 * time.Second
)

func (sc *storeCmd) mountCmd() *cobra.Command {
	var cacheDir string
	var debug bool
	var repairEvery time.Duration
	cmd := &cobra.Command{
		Use:   "mount --config FILE MOUNTPOINT",
		Short: "Mount the store as a file system until interrupted",
		Long: `mount serves the store at MOUNTPOINT with FUSE, in the foreground, until
SIGINT or SIGTERM; then it uploads files still open for writing (what
write(2) accepted before the signal is stored) and unmounts, detaching the
mount lazily if files are still open a few seconds later. A file written through the mount reaches the store when it is
closed or fsynced; fsync returns once it is durable. Files being written
are spooled in --cache-dir, which needs room for them.

While mounted, it checks every shard and repairs what is missing or corrupt
every --repair-every (as 'zgrid store repair' does, under the same writer
lock as the mount's own writes), and logs what it found and fixed.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			mnt := args[0]
			if fi, err := os.Stat(mnt); err != nil || !fi.IsDir() {
				return fmt.Errorf("mount point %s: not a directory (create it first): %v", mnt, err)
			}
			s, done, err := sc.open(cmd.Context(), false)
			if err != nil {
				return err
			}
			defer done()
			if cacheDir == "" {
				if cacheDir, err = os.MkdirTemp("", "zgrid-mount-"); err != nil {
					return err
				}
				defer os.RemoveAll(cacheDir)
			}
			if os.Getenv("GOMEMLIMIT") == "" {
				// The caches hold about 100 MiB (4 segments, read-ahead,
				// 512 frames); a soft limit keeps garbage from doubling it.
				rdebug.SetMemoryLimit(mountMemoryLimit)
			}
			log := slog.New(slog.NewTextHandler(sc.g.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			srv, err := fusefs.Mount(mnt, s, fusefs.Options{CacheDir: cacheDir, Logger: log, Debug: debug})
			if err != nil {
				return fmt.Errorf("mount %s: %w (is /dev/fuse there and fusermount3 installed?)", mnt, err)
			}
			fmt.Fprintf(sc.g.stdout, "mounted at %s\n", mnt)
			if repairEvery > 0 {
				rctx, stopRepair := context.WithCancel(cmd.Context())
				repaired := make(chan struct{})
				go func() { defer close(repaired); repairLoop(rctx, s, repairEvery, sc.g.stderr) }()
				defer func() { stopRepair(); <-repaired }()
			}
			<-cmd.Context().Done()
			fmt.Fprintf(sc.g.stderr, "unmounting %s\n", mnt)
			err = fusefs.Unmount(srv, mnt, unmountWait, lingerWait)
			if errors.Is(err, fusefs.ErrLingering) {
				fmt.Fprintf(sc.g.stderr, "%s unmounted; %v: exiting closes it\n", mnt, err)
				return nil
			}
			if err != nil {
				return fmt.Errorf("unmount %s: %w (files still open? `fusermount3 -u -z %s` detaches it)", mnt, err, mnt)
			}
			return nil
		},
	}
	cmd.Flags().StringVar(&cacheDir, "cache-dir", "", "directory for spool files of files being written (default: a temporary directory)")
	cmd.Flags().BoolVar(&debug, "debug", false, "log every FUSE request")
	cmd.Flags().DurationVar(&repairEvery, "repair-every", time.Hour, "check and repair the store in the background this often (0: never)")
	return cmd
}

// repairLoop runs Repair every interval until ctx ends, and says on w what
// each pass found and did.
func repairLoop(ctx context.Context, s *catalog.Store, every time.Duration, w io.Writer) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		rep, err := s.Repair(ctx, catalog.RepairOptions{})
		switch {
		case ctx.Err() != nil:
			return
		case err != nil:
			fmt.Fprintf(w, "background repair: %v\n", err)
		case len(rep.Repaired) > 0 || len(rep.Failed) > 0:
			fmt.Fprintf(w, "background repair: %d shards rebuilt, %d could not be (run `zgrid store check` for details)\n", len(rep.Repaired), len(rep.Failed))
		}
	}
}
