package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"time"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/zdb"
)

type zdbFlags struct {
	listen, dir, adminPassword, sync string
	syncInterval, compactInterval    time.Duration
	idleTimeout                      time.Duration
	compactRatio                     float64
	dataFileSize                     int64
	maxClients                       int
}

func newZDBCmd(g *globals) *cobra.Command {
	f := &zdbFlags{}
	cmd := &cobra.Command{
		Use:   "zdb --dir DIR [--listen ADDR]",
		Short: "Run a storage backend: an append-only key-value store speaking 0-db's Redis protocol",
		Long: `Serves the namespaces in --dir over the Redis protocol with 0-db's commands
(SET, GET, DEL, EXISTS, SCAN, KEYCUR, NSNEW, NSSET, SELECT, AUTH SECURE, …),
so redis-cli and 0-db clients can use it. The format and the commands are in
docs/formats/zdb.md.

The admin password (needed for NSNEW, NSDEL, NSSET) comes from the
ZGRID_ZDB_ADMIN environment variable or --admin-password; prefer the
variable, since other users of the machine can read command lines. Without
one, every client is admin.

--sync batch (the default) acknowledges a write once the kernel has it and
fsyncs every --sync-interval: a killed process loses nothing, a power loss
can lose the last interval. --sync always fsyncs before every reply.

Stop with Ctrl-C or SIGTERM: writes in progress finish, data is synced and
the index is saved. After a crash the next start cuts off a torn last
record (logged) and rebuilds what the index file lacks from the data files.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runZDB(cmd, g, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.listen, "listen", "127.0.0.1:9900", "address to listen on, host:port")
	fl.StringVar(&f.dir, "dir", "", "data directory, one subdirectory per namespace (created if missing)")
	fl.StringVar(&f.adminPassword, "admin-password", "", "admin password (default $ZGRID_ZDB_ADMIN; none: everyone is admin)")
	fl.StringVar(&f.sync, "sync", string(zdb.SyncBatch), "when writes are fsynced: always (before each reply) or batch")
	fl.DurationVar(&f.syncInterval, "sync-interval", 50*time.Millisecond, "fsync period of --sync batch")
	fl.Int64Var(&f.dataFileSize, "datafile-size", 64<<20, "start a new data file before one would pass this many bytes")
	fl.DurationVar(&f.compactInterval, "compact-interval", 0, "compact in the background this often (0: only on COMPACT)")
	fl.Float64Var(&f.compactRatio, "compact-ratio", 0.5, "background compaction rewrites a data file once this share of it (above 0, at most 1) is dead")
	fl.IntVar(&f.maxClients, "max-clients", 1024, "refuse connections beyond this many")
	fl.DurationVar(&f.idleTimeout, "idle-timeout", 0, "close connections idle this long (0: never)")
	return cmd
}

func runZDB(cmd *cobra.Command, g *globals, f *zdbFlags) error {
	if f.dir == "" {
		return errors.New("--dir DIR is required: the namespaces are stored there")
	}
	if f.sync != string(zdb.SyncAlways) && f.sync != string(zdb.SyncBatch) {
		return fmt.Errorf("--sync %q: use always or batch", f.sync)
	}
	admin := f.adminPassword
	if admin == "" {
		admin = os.Getenv("ZGRID_ZDB_ADMIN")
	}
	log := g.logger().With("module", "zdb")
	store, err := zdb.Open(zdb.Options{
		Dir: f.dir, Logger: log, Sync: zdb.SyncPolicy(f.sync), SyncInterval: f.syncInterval,
		MaxFileSize: f.dataFileSize, CompactInterval: f.compactInterval, CompactRatio: f.compactRatio,
	})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", f.listen)
	if err != nil {
		return errors.Join(fmt.Errorf("listen on %s: %w", f.listen, err), store.Close())
	}
	srv := zdb.NewServer(store, zdb.ServerConfig{
		AdminPassword: admin, MaxClients: f.maxClients, IdleTimeout: f.idleTimeout, Logger: log,
	})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if admin == "" {
		log.Warn("no admin password: every client can create, change and delete namespaces")
	}
	fmt.Fprintf(cmd.OutOrStdout(), "zdb ready: listening on %s, data in %s\n", ln.Addr(), f.dir)
	select {
	case <-cmd.Context().Done():
		log.Info("stopping zdb")
	case err = <-served:
		log.Error("server stopped", "err", err)
	}
	return errors.Join(err, srv.Close(), store.Close())
}
