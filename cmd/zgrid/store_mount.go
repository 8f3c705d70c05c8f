package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/storage/fusefs"
)

// unmountWait is how long a stop waits for open files to be closed (each
// is uploaded as it is released) before it detaches the mount lazily; a
// file still open 5 s after that is not stored.
const unmountWait = 10 * time.Second

func (sc *storeCmd) mountCmd() *cobra.Command {
	var cacheDir string
	var debug bool
	cmd := &cobra.Command{
		Use:   "mount --config FILE MOUNTPOINT",
		Short: "Mount the store as a file system until interrupted",
		Long: `mount serves the store at MOUNTPOINT with FUSE, in the foreground, until
SIGINT or SIGTERM; then it uploads files still open for writing and
unmounts. A file written through the mount reaches the store when it is
closed or fsynced; fsync returns once it is durable. Files being written
are spooled in --cache-dir, which needs room for them.`,
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
			log := slog.New(slog.NewTextHandler(sc.g.stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))
			srv, err := fusefs.Mount(mnt, s, fusefs.Options{CacheDir: cacheDir, Logger: log, Debug: debug})
			if err != nil {
				return fmt.Errorf("mount %s: %w (is /dev/fuse there and fusermount3 installed?)", mnt, err)
			}
			fmt.Fprintf(sc.g.stdout, "mounted at %s\n", mnt)
			<-cmd.Context().Done()
			fmt.Fprintf(sc.g.stderr, "unmounting %s\n", mnt)
			err = fusefs.Unmount(srv, mnt, unmountWait, 5*time.Second)
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
	return cmd
}
