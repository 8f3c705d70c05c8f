package main

import (
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"time"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/ledger/client"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
	"github.com/zerogrid/zerogrid/internal/workload/qsfs"
)

// qsfsCommand is how the node agent starts a qsfs workload's mount
// process: this binary (as the agent runs it) with the hidden subcommand
// below.
var qsfsCommand = []string{"/proc/self/exe", "qsfs-mount"}

func newQSFSMountCmd(g *globals) *cobra.Command {
	var mc qsfs.MountConfig
	cmd := &cobra.Command{
		Use:   "qsfs-mount",
		Short: "The mount process of one qsfs workload (started by zgridd node, not by hand)",
		Long: `Mounts the store of --config at --mountpoint (FUSE, allow_other) until
SIGTERM, initialising it when no backend holds one; probes the backends
that hold shards, repairs onto the others when some stay unreachable,
and keeps --health current. The mnemonic comes from ZGRID_MNEMONIC.`,
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			mc.Mnemonic = os.Getenv("ZGRID_MNEMONIC")
			os.Unsetenv("ZGRID_MNEMONIC")
			if mc.Mnemonic == "" || mc.ConfigFile == "" || mc.Mountpoint == "" || mc.HealthFile == "" || mc.CacheDir == "" {
				return errors.New("qsfs-mount needs --config, --mountpoint, --cache-dir, --health and ZGRID_MNEMONIC")
			}
			mc.Log = g.logger().With("module", "qsfs")
			return qsfs.RunMount(cmd.Context(), mc)
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&mc.ConfigFile, "config", "", "store configuration file")
	fl.StringVar(&mc.Mountpoint, "mountpoint", "", "directory to mount at")
	fl.StringVar(&mc.CacheDir, "cache-dir", "", "spool directory for files being written")
	fl.StringVar(&mc.HealthFile, "health", "", "file the health is written to")
	fl.DurationVar(&mc.CheckEvery, "check-every", 5*time.Second, "how often the backends holding shards are probed")
	fl.DurationVar(&mc.RepairAfter, "repair-after", 30*time.Second, "rebuild the shards of backends unreachable this long onto the others")
	fl.DurationVar(&mc.ScrubEvery, "scrub-every", 6*time.Hour, "read and check every shard, and repair, this often")
	return cmd
}

// addQSFS registers the qsfs manager; a node without /dev/fuse runs no
// qsfs workloads.
func addQSFS(ms *managers, f *nodeFlags, log *slog.Logger, c *client.Client) error {
	m, err := newQSFS(f, log, c)
	return ms.add(spec.TypeQSFS, m, err, log)
}

func newQSFS(f *nodeFlags, log *slog.Logger, c *client.Client) (*qsfs.Manager, error) {
	if _, err := os.Stat("/dev/fuse"); err != nil || os.Geteuid() != 0 {
		return nil, &workload.UnavailableError{Type: spec.TypeQSFS, Reason: "qsfs mounts need root and /dev/fuse"}
	}
	if _, err := exec.LookPath("fusermount3"); err != nil {
		if _, err := exec.LookPath("fusermount"); err != nil {
			return nil, &workload.UnavailableError{Type: spec.TypeQSFS, Reason: "fusermount3 is not installed (Debian package fuse3)"}
		}
	}
	return qsfs.New(qsfs.Config{DataDir: f.data, Log: log.With("workload", "qsfs"), Clock: workload.SystemClock{},
		Command: qsfsCommand, Resolve: qsfs.LedgerResolver(c, c.Chain())})
}
