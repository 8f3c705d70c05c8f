package main

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/zdb"
)

type zdbFlags struct {
	listen, dir, adminPassword, sync string
	socket, mode                     string
	syncInterval, compactInterval    time.Duration
	idleTimeout, requestTimeout      time.Duration
	compactRatio                     float64
	dataFileSize                     int64
	connBuffer, maxBuffer            int64
	maxClients, maxConnsPerAddr      int
	protect                          bool
}

func newZDBCmd(g *globals) *cobra.Command {
	f := &zdbFlags{}
	cmd := &cobra.Command{
		Use:   "zdb --dir DIR [--listen ADDR]",
		Short: "Run a storage backend: an append-only key-value store speaking 0-db's Redis protocol",
		Long: `Serves the namespaces in --dir over the Redis protocol with 0-db's commands
(SET, GET, DEL, EXISTS, SCAN, RSCAN, KSCAN, KEYCUR, NSNEW, NSSET, SELECT,
AUTH SECURE, STOP, …), so redis-cli and 0-db clients can use it, over TCP
(--listen) or a unix socket (--socket, mode 0600). --mode seq makes the
default namespace and new ones sequential, as 0-db's --mode. The format and the commands are in
docs/formats/zdb.md.

The admin password (needed for NSNEW, NSDEL, NSSET) comes from the
ZGRID_ZDB_ADMIN environment variable or --admin-password; prefer the
variable, since other users of the machine can read command lines. Without
one every client is admin, so zdb then listens only on a loopback address
(--listen 127.0.0.1:PORT) and refuses to start on any other.

A namespace with a password is private: SELECT needs the password, unless
an admin made it public (NSSET ns public 1: read-only without it). The
default namespace is locked with --protect (the default): read-only unless
selected with the admin password (SELECT default PASSWORD).

Limits against clients that hold resources: --max-clients connections in
all and --max-conns-per-addr from one IP address; a connection idle for
--idle-timeout is closed, a request must arrive (and a reply be read) within
--request-timeout; a connection may buffer --conn-buffer bytes and all
together --max-buffer. A client over a limit gets an error naming the flag
and is disconnected. NSSET ns maxsize bounds a namespace's bytes on disk;
compaction frees dead records every --compact-interval.

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
	fl.StringVar(&f.listen, "listen", "127.0.0.1:9900", "address to listen on, host:port (beyond loopback only with an admin password)")
	fl.StringVar(&f.socket, "socket", "", "serve on this unix socket (mode 0600) instead of --listen, as 0-db's --socket")
	fl.StringVar(&f.mode, "mode", string(zdb.ModeUser), "mode of new namespaces and of the default one: user or seq (0-db's --mode)")
	fl.StringVar(&f.dir, "dir", "", "data directory, one subdirectory per namespace (created if missing)")
	fl.StringVar(&f.adminPassword, "admin-password", "", "admin password (default $ZGRID_ZDB_ADMIN; none: everyone is admin, loopback only)")
	fl.BoolVar(&f.protect, "protect", true, "lock the default namespace: read-only unless selected with the admin password (needs one)")
	fl.StringVar(&f.sync, "sync", string(zdb.SyncBatch), "when writes are fsynced: always (before each reply) or batch")
	fl.DurationVar(&f.syncInterval, "sync-interval", 50*time.Millisecond, "fsync period of --sync batch")
	fl.Int64Var(&f.dataFileSize, "datafile-size", 64<<20, "start a new data file before one would pass this many bytes")
	fl.DurationVar(&f.compactInterval, "compact-interval", 10*time.Minute, "compact in the background this often (0: only on COMPACT)")
	fl.Float64Var(&f.compactRatio, "compact-ratio", 0.5, "background compaction rewrites a data file once this share of it (above 0, at most 1) is dead")
	fl.IntVar(&f.maxClients, "max-clients", 1024, "refuse connections beyond this many")
	fl.IntVar(&f.maxConnsPerAddr, "max-conns-per-addr", 32, "refuse connections from one IP address beyond this many")
	fl.DurationVar(&f.idleTimeout, "idle-timeout", 5*time.Minute, "close connections idle this long between requests")
	fl.DurationVar(&f.requestTimeout, "request-timeout", 30*time.Second, "cut a client whose request is not complete, or who has not read a reply, this long after it started")
	fl.Int64Var(&f.connBuffer, "conn-buffer", zdb.DefaultConnBuffer, "bytes of requests and replies one connection may have buffered (at least one 8 MiB value twice)")
	fl.Int64Var(&f.maxBuffer, "max-buffer", 256<<20, "bytes of requests and replies all connections together may have buffered")
	return cmd
}

func runZDB(cmd *cobra.Command, g *globals, f *zdbFlags) error {
	if f.dir == "" {
		return errors.New("--dir DIR is required: the namespaces are stored there")
	}
	if f.sync != string(zdb.SyncAlways) && f.sync != string(zdb.SyncBatch) {
		return fmt.Errorf("--sync %q: use always or batch", f.sync)
	}
	for name, v := range map[string]int64{
		"--max-clients": int64(f.maxClients), "--max-conns-per-addr": int64(f.maxConnsPerAddr),
		"--idle-timeout": int64(f.idleTimeout), "--request-timeout": int64(f.requestTimeout),
		"--conn-buffer": f.connBuffer, "--max-buffer": f.maxBuffer,
	} {
		if v <= 0 {
			return fmt.Errorf("%s must be above 0: it is a limit that keeps clients from exhausting the server", name)
		}
	}
	if f.mode != string(zdb.ModeUser) && f.mode != string(zdb.ModeSeq) {
		return fmt.Errorf("--mode %q: use user or seq", f.mode)
	}
	if f.socket != "" && cmd.Flags().Changed("listen") {
		return errors.New("pass --socket or --listen, not both")
	}
	admin := f.adminPassword
	if admin == "" {
		admin = os.Getenv("ZGRID_ZDB_ADMIN")
	}
	if admin == "" && f.socket == "" {
		if err := loopbackOnly(f.listen); err != nil {
			return err
		}
	}
	log := g.logger().With("module", "zdb")
	store, err := zdb.Open(zdb.Options{
		Dir: f.dir, Logger: log, Sync: zdb.SyncPolicy(f.sync), SyncInterval: f.syncInterval,
		MaxFileSize: f.dataFileSize, CompactInterval: f.compactInterval, CompactRatio: f.compactRatio,
		Mode: zdb.Mode(f.mode),
	})
	if err != nil {
		return err
	}
	ln, err := zdbListen(f)
	if err != nil {
		return errors.Join(err, store.Close())
	}
	stop := make(chan struct{})
	var stopOnce sync.Once
	srv := zdb.NewServer(store, zdb.ServerConfig{
		OnStop:        func() { stopOnce.Do(func() { close(stop) }) },
		AdminPassword: admin, ProtectDefault: f.protect, Logger: log,
		MaxClients: f.maxClients, MaxConnsPerAddr: f.maxConnsPerAddr,
		IdleTimeout: f.idleTimeout, RequestTimeout: f.requestTimeout,
		ConnBuffer: f.connBuffer, MaxBuffer: f.maxBuffer,
	})
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	if admin == "" {
		log.Warn("no admin password: every client on this machine can create, change and delete namespaces")
	}
	fmt.Fprintf(cmd.OutOrStdout(), "zdb ready: listening on %s, data in %s\n", ln.Addr(), f.dir)
	select {
	case <-cmd.Context().Done():
		log.Info("stopping zdb")
	case <-stop:
		log.Info("stopping zdb: STOP from an admin")
	case err = <-served:
		log.Error("server stopped", "err", err)
	}
	closeErr := srv.Close()
	if err == nil {
		err = <-served
	}
	return errors.Join(err, closeErr, store.Close())
}

// zdbListen listens on --socket (a unix socket only its owner may use; a
// stale socket file is replaced, a live one refused) or on --listen.
func zdbListen(f *zdbFlags) (net.Listener, error) {
	if f.socket == "" {
		ln, err := net.Listen("tcp", f.listen)
		if err != nil {
			return nil, fmt.Errorf("listen on %s: %w", f.listen, err)
		}
		return ln, nil
	}
	if fi, err := os.Lstat(f.socket); err == nil {
		if fi.Mode()&os.ModeSocket == 0 {
			return nil, fmt.Errorf("--socket %s exists and is not a socket: choose another path", f.socket)
		}
		if c, err := net.Dial("unix", f.socket); err == nil {
			c.Close()
			return nil, fmt.Errorf("--socket %s is in use by another server", f.socket)
		}
		if err := os.Remove(f.socket); err != nil {
			return nil, err
		}
	}
	old := syscall.Umask(0o177)
	ln, err := net.Listen("unix", f.socket)
	syscall.Umask(old)
	if err != nil {
		return nil, fmt.Errorf("listen on unix socket %s: %w", f.socket, err)
	}
	return ln, nil
}

// loopbackOnly refuses a listen address that other machines can reach: a
// server without an admin password makes every client admin.
func loopbackOnly(listen string) error {
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		return fmt.Errorf("--listen %q: %w (want host:port)", listen, err)
	}
	ips, err := net.LookupIP(host)
	if host == "" {
		ips, err = nil, nil
	}
	loopback := err == nil && len(ips) > 0
	for _, ip := range ips {
		loopback = loopback && ip.IsLoopback()
	}
	if !loopback {
		return fmt.Errorf("--listen %s reaches beyond loopback, and without an admin password every client could create, change and delete namespaces: set ZGRID_ZDB_ADMIN (or --admin-password), or listen on 127.0.0.1", listen)
	}
	return nil
}
