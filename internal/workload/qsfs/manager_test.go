package qsfs

import (
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
	"github.com/zerogrid/zerogrid/internal/workload/workloadtest"
	zdbsrv "github.com/zerogrid/zerogrid/internal/zdb"
)

// TestMain doubles as the mount process: the test binary run as
// `BINARY qsfsmount --config … --mountpoint … --cache-dir … --health …`
// runs RunMount as `zgridd qsfs-mount` does (a real process, a real
// FUSE mount).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "qsfsmount" {
		fs := flag.NewFlagSet("qsfsmount", flag.ExitOnError)
		var mc MountConfig
		fs.StringVar(&mc.ConfigFile, "config", "", "")
		fs.StringVar(&mc.Mountpoint, "mountpoint", "", "")
		fs.StringVar(&mc.CacheDir, "cache-dir", "", "")
		fs.StringVar(&mc.HealthFile, "health", "", "")
		fs.Parse(os.Args[2:])
		mc.Mnemonic = os.Getenv("ZGRID_MNEMONIC")
		mc.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
		mc.CheckEvery, mc.RepairAfter = 500*time.Millisecond, 2*time.Second
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		err := RunMount(ctx, mc)
		stop()
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func needFUSE(t *testing.T) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("qsfs mounts need root")
	}
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skip("qsfs mounts need /dev/fuse")
	}
}

// zdbServer is a zdb server in the test process whose namespaces the
// resolver creates on demand, each with password "pw".
type zdbServer struct {
	addr string
	srv  *zdbsrv.Server
	rdb  *redis.Client
	ln   net.Listener
}

func startZDB(t *testing.T) *zdbServer {
	t.Helper()
	store, err := zdbsrv.Open(zdbsrv.Options{Dir: t.TempDir(), Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	z := &zdbServer{addr: ln.Addr().String(), ln: ln,
		srv: zdbsrv.NewServer(store, zdbsrv.ServerConfig{Logger: slog.New(slog.DiscardHandler)})}
	go z.srv.Serve(ln)
	z.rdb = redis.NewClient(&redis.Options{Addr: z.addr, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { z.rdb.Close(); z.srv.Close(); store.Close() })
	return z
}

// resolve makes namespace CONTRACT-WORKLOAD; each workload is a failure
// domain of its own.
func (z *zdbServer) resolve(ctx context.Context, owner uint64, ref spec.ZDBRef) (Backend, error) {
	ns := strconv.FormatUint(ref.Contract, 10) + "-" + ref.Workload
	if err := z.rdb.Do(ctx, "NSNEW", ns).Err(); err != nil && err.Error() != zdbsrv.ErrNamespaceExists.Error() {
		return Backend{}, err
	}
	if err := z.rdb.Do(ctx, "NSSET", ns, "password", "pw").Err(); err != nil {
		return Backend{}, err
	}
	return Backend{ID: ns, Address: z.addr, Namespace: ns, Domain: ref.Workload}, nil
}

func testConfig(t *testing.T, z *zdbServer) Config {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Config{DataDir: t.TempDir(), Log: slog.New(slog.DiscardHandler), Clock: workload.SystemClock{},
		Command: []string{exe, "qsfsmount"}, Resolve: z.resolve, CheckEvery: 200 * time.Millisecond, MountWait: 30 * time.Second}
}

func newManager(t *testing.T, cfg Config) *Manager {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// What a test left running goes with it.
		refs, _ := m.List(context.Background())
		for _, ref := range refs {
			m.Deprovision(context.Background(), workload.Deployment{ID: ref.Deployment}, ref.Name)
		}
		m.Close()
	})
	return m
}

func qsfsWorkload(name string, backends ...string) spec.Workload {
	cfg := spec.QSFSConfig{K: 2, M: 1, Secret: "MNEMONIC", Password: "PW"}
	for _, b := range backends {
		cfg.Backends = append(cfg.Backends, spec.ZDBRef{Contract: 1, Workload: b})
	}
	w := spec.Workload{Name: name, Type: spec.TypeQSFS}
	if err := w.SetConfig(cfg); err != nil {
		panic(err)
	}
	return w
}

func deployment(t *testing.T, id uint64) workload.Deployment {
	m, err := identity.NewMnemonic(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return workload.Deployment{ID: id, Generation: 1, Owner: 7,
		Secrets: workload.NewSecrets(map[string][]byte{"MNEMONIC": []byte(m), "PW": []byte("pw")})}
}

func TestConformance(t *testing.T) {
	needFUSE(t)
	z := startZDB(t)
	var next atomic.Uint64
	workloadtest.Run(t, workloadtest.Harness{
		New: func(t *testing.T) workload.Manager { return newManager(t, testConfig(t, z)) },
		Reopen: func(t *testing.T, m workload.Manager) workload.Manager {
			cfg := m.(*Manager).cfg
			m.Close()
			return newManager(t, cfg)
		},
		Valid: func(t *testing.T, name string) (workload.Deployment, spec.Workload) {
			id := 100 + next.Add(1)
			w := qsfsWorkload(name, "a", "b", "c")
			var cfg spec.QSFSConfig
			w.DecodeConfig(&cfg)
			for i := range cfg.Backends {
				cfg.Backends[i].Contract = id // a store of its own
			}
			w.SetConfig(cfg)
			return deployment(t, id), w
		},
		Change: func(t *testing.T, w spec.Workload) spec.Workload {
			var cfg spec.QSFSConfig
			w.DecodeConfig(&cfg)
			cfg.Backends = append(cfg.Backends, spec.ZDBRef{Contract: cfg.Backends[0].Contract, Workload: "d"})
			w.SetConfig(cfg)
			return w
		},
		Invalid: func(t *testing.T, name string) spec.Workload {
			w := qsfsWorkload(name, "a")
			return w
		},
		Timeout: 30 * time.Second,
	})
}

// TestMountHealth: files written at the mount point are stored; a
// backend that goes away turns the workload Degraded with its name, the
// files still read, and once the repair has moved its shards to the
// spare the workload is Ready again; Deprovision unmounts.
func TestMountHealth(t *testing.T) {
	needFUSE(t)
	z := startZDB(t)
	down := startZDB(t) // the backend that goes away
	cfg := testConfig(t, z)
	cfg.Resolve = func(ctx context.Context, owner uint64, ref spec.ZDBRef) (Backend, error) {
		if ref.Workload == "gone" {
			return down.resolve(ctx, owner, ref)
		}
		return z.resolve(ctx, owner, ref)
	}
	m := newManager(t, cfg)
	ctx := t.Context()
	d, w := deployment(t, 5), qsfsWorkload("fs", "gone", "b", "c", "spare")
	if err := m.Provision(ctx, d, w); err != nil {
		t.Fatal(err)
	}
	workloadtest.WaitReady(t, m, d, "fs", 30*time.Second)
	mnt, err := m.HostPath(ctx, d, "fs")
	if err != nil {
		t.Fatal(err)
	}
	want := make([]byte, 3<<20)
	rand.Read(want)
	if err := os.WriteFile(filepath.Join(mnt, "f"), want, 0o644); err != nil {
		t.Fatal(err)
	}
	// Placement takes one backend per domain, in domain order: b, c and
	// gone hold the shards, spare none.
	down.srv.Close()
	st := workloadtest.WaitState(t, m, d, "fs", workload.Degraded, 30*time.Second)
	if !contains(st.Reason, "1-gone") {
		t.Errorf("degraded without naming the backend gone: %q", st.Reason)
	}
	if got, err := os.ReadFile(filepath.Join(mnt, "f")); err != nil || string(got) != string(want) {
		t.Fatalf("read with a backend gone: %d bytes, %v", len(got), err)
	}
	workloadtest.WaitReady(t, m, d, "fs", 60*time.Second)
	if err := m.Deprovision(ctx, d, "fs"); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile("/proc/self/mountinfo"); contains(string(b), mnt) {
		t.Errorf("%s still mounted after Deprovision", mnt)
	}
	if _, err := m.Observe(ctx, d, "fs"); !errors.Is(err, workload.ErrNotFound) {
		t.Errorf("Observe after Deprovision: %v", err)
	}
}

func contains(s, sub string) bool { return sub != "" && strings.Contains(s, sub) }
