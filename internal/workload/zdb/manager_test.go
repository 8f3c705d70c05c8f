package zdb

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
	"github.com/zerogrid/zerogrid/internal/workload/proc"
	"github.com/zerogrid/zerogrid/internal/workload/workloadtest"
	zdbsrv "github.com/zerogrid/zerogrid/internal/zdb"
)

// TestMain doubles as the zdb server the manager starts: the test binary
// run as `BINARY zdbserve --listen ADDR --dir DIR` serves like
// `zgridd zdb` (a real process, a real server).
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && os.Args[1] == "zdbserve" {
		if err := serve(os.Args[2:]); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

func serve(args []string) error {
	var listen, dir string
	for i := 0; i+1 < len(args); i += 2 {
		switch args[i] {
		case "--listen":
			listen = args[i+1]
		case "--dir":
			dir = args[i+1]
		}
	}
	store, err := zdbsrv.Open(zdbsrv.Options{Dir: dir, Logger: slog.Default()})
	if err != nil {
		return err
	}
	ln, err := net.Listen("tcp", listen)
	if err != nil {
		return err
	}
	srv := zdbsrv.NewServer(store, zdbsrv.ServerConfig{AdminPassword: os.Getenv("ZGRID_ZDB_ADMIN"), ProtectDefault: true, Logger: slog.Default()})
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM)
	go func() { <-sig; srv.Close() }()
	err = srv.Serve(ln)
	return errors.Join(store.Close())
}

func freeAddr(t *testing.T) netip.AddrPort {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return netip.MustParseAddrPort(ln.Addr().String())
}

func testConfig(t *testing.T) Config {
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	return Config{DataDir: t.TempDir(), Log: slog.New(slog.DiscardHandler), Clock: workload.SystemClock{},
		Command: []string{exe, "zdbserve"}, Listen: freeAddr(t), CheckEvery: 200 * time.Millisecond, StopTimeout: 5 * time.Second}
}

func newManager(t *testing.T, cfg Config) *Manager {
	t.Helper()
	m, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.Close()
		// What a test left running goes with it.
		var rec serverRecord
		if ok, _ := loadServerRecord(m.srv.recPath(), &rec); ok {
			if p, _ := proc.Adopt(rec.Proc); p != nil {
				p.Kill(time.Second)
			}
		}
	})
	return m
}

func loadServerRecord(path string, rec *serverRecord) (bool, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return false, nil
	}
	return true, jsonUnmarshal(b, rec)
}

func zdbWorkload(name string, disk uint64) spec.Workload {
	w := spec.Workload{Name: name, Type: spec.TypeZDB, Resources: spec.Resources{Disk: disk}}
	if err := w.SetConfig(spec.ZDBConfig{Password: "ZDB_PASSWORD"}); err != nil {
		panic(err)
	}
	return w
}

func deployment(id uint64, password string) workload.Deployment {
	return workload.Deployment{ID: id, Generation: 1, Owner: 7,
		Secrets: workload.NewSecrets(map[string][]byte{"ZDB_PASSWORD": []byte(password)})}
}

func TestConformance(t *testing.T) {
	var next atomic.Uint64
	workloadtest.Run(t, workloadtest.Harness{
		New: func(t *testing.T) workload.Manager { return newManager(t, testConfig(t)) },
		Reopen: func(t *testing.T, m workload.Manager) workload.Manager {
			cfg := m.(*Manager).cfg
			m.Close()
			return newManager(t, cfg)
		},
		Valid: func(t *testing.T, name string) (workload.Deployment, spec.Workload) {
			return deployment(100+next.Add(1), "pw-"+name), zdbWorkload(name, 1<<20)
		},
		Change: func(t *testing.T, w spec.Workload) spec.Workload {
			w.Resources.Disk *= 2
			return w
		},
		Invalid: func(t *testing.T, name string) spec.Workload { return zdbWorkload(name, 0) },
		Timeout: 20 * time.Second,
	})
}

// client connects to the manager's server as a user would.
func client(m *Manager, ns, password string) *redis.Client {
	return redis.NewClient(&redis.Options{Addr: m.cfg.Listen.String(), Protocol: 2, DisableIdentity: true, MaxRetries: -1,
		OnConnect: func(ctx context.Context, cn *redis.Conn) error {
			args := []any{"SELECT", ns}
			if password != "" {
				args = append(args, password)
			}
			return cn.Do(ctx, args...).Err()
		}})
}

// TestNamespaceLife: the owner's password opens the namespace, nothing
// else does; the size limit holds; the password changes with the spec;
// Deprovision deletes the data from the disk.
func TestNamespaceLife(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	m := newManager(t, testConfig(t))
	d, w := deployment(5, "first"), zdbWorkload("db", 256<<10)
	if err := m.Provision(ctx, d, w); err != nil {
		t.Fatal(err)
	}
	st := workloadtest.WaitReady(t, m, d, "db", 20*time.Second)
	if st.Addr != m.cfg.Listen.String() {
		t.Errorf("Addr %q, want %s", st.Addr, m.cfg.Listen)
	}
	ns := NamespaceName(5, "db")
	c := client(m, ns, "first")
	defer c.Close()
	if err := c.Do(ctx, "SET", "k", "v").Err(); err != nil {
		t.Fatalf("SET with the owner's password: %v", err)
	}
	for _, pw := range []string{"", "wrong"} {
		bad := client(m, ns, pw)
		if err := bad.Do(ctx, "GET", "k").Err(); err == nil {
			t.Errorf("GET with password %q succeeded: the namespace must be private", pw)
		}
		bad.Close()
	}
	// The limit is on bytes on disk: 256 KiB take no more than a few
	// 64 KiB values.
	big := strings.Repeat("x", 64<<10)
	var full error
	for i := range 8 {
		if full = c.Do(ctx, "SET", fmt.Sprint("big", i), big).Err(); full != nil {
			break
		}
	}
	if full == nil || !strings.Contains(full.Error(), zdbsrv.NamespaceFullMessage) {
		t.Errorf("512 KiB into a 256 KiB zdb: %v, want %q", full, zdbsrv.NamespaceFullMessage)
	}
	// A new password replaces the old one.
	d2 := deployment(5, "second")
	d2.Generation = 2
	if err := m.Update(ctx, d2, w); err != nil {
		t.Fatal(err)
	}
	c2 := client(m, ns, "second")
	defer c2.Close()
	if v, err := c2.Do(ctx, "GET", "k").Text(); err != nil || v != "v" {
		t.Errorf("GET with the new password: %q %v", v, err)
	}
	old := client(m, ns, "first")
	if err := old.Do(ctx, "GET", "k").Err(); err == nil {
		t.Error("the old password still opens the namespace")
	}
	old.Close()
	dir := filepath.Join(m.srv.dataDir(), ns)
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("namespace directory: %v", err)
	}
	if err := m.Deprovision(ctx, d2, "db"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(dir); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("namespace data left after Deprovision: %v", err)
	}
	if _, err := os.Stat(m.srv.recPath()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("the server still runs with no zdb workload left: %v", err)
	}
}

// TestServerRestarted: a server that dies is started again, with its
// namespaces, and the workload says so.
func TestServerRestarted(t *testing.T) {
	t.Parallel()
	ctx := t.Context()
	m := newManager(t, testConfig(t))
	d, w := deployment(9, "pw"), zdbWorkload("db", 1<<20)
	if err := m.Provision(ctx, d, w); err != nil {
		t.Fatal(err)
	}
	workloadtest.WaitReady(t, m, d, "db", 20*time.Second)
	c := client(m, NamespaceName(9, "db"), "pw")
	defer c.Close()
	if err := c.Do(ctx, "SET", "k", "kept").Err(); err != nil {
		t.Fatal(err)
	}
	m.srv.mu.Lock()
	pid := m.srv.proc.PID
	m.srv.mu.Unlock()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	var events []workload.Event
	for {
		st, err := m.Observe(ctx, d, "db")
		if err != nil {
			t.Fatal(err)
		}
		events = append(events, st.Events...)
		if st.State == workload.Ready && st.Restarts == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not Ready with one restart: %+v", st)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if v, err := c.Do(ctx, "GET", "k").Text(); err != nil || v != "kept" {
		t.Errorf("GET after the restart: %q %v", v, err)
	}
	found := false
	for _, e := range events {
		found = found || strings.Contains(e.Reason, fmt.Sprintf("pid %d) ended", pid))
	}
	if !found {
		t.Errorf("no event says the server ended: %+v", events)
	}
	if err := m.Deprovision(ctx, d, "db"); err != nil {
		t.Fatal(err)
	}
}

func TestMissingPasswordIsPermanent(t *testing.T) {
	t.Parallel()
	m := newManager(t, testConfig(t))
	d := workload.Deployment{ID: 3, Generation: 1}
	err := m.Provision(t.Context(), d, zdbWorkload("db", 1<<20))
	if !workload.IsPermanent(err) || !strings.Contains(err.Error(), "no secret ZDB_PASSWORD") {
		t.Fatalf("Provision without the password secret: %v", err)
	}
}

func jsonUnmarshal(b []byte, v any) error { return json.Unmarshal(b, v) }
