package zdb

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// logBuffer collects a store's or server's log for assertions.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

func (l *logBuffer) logger() *slog.Logger {
	return slog.New(slog.NewTextHandler(l, &slog.HandlerOptions{Level: slog.LevelDebug}))
}

// openStore opens a store in dir with a captured log; the store is closed
// at the end of the test unless the test closed or abandoned it.
func openStore(t *testing.T, dir string, tweak func(*Options)) (*Store, *logBuffer) {
	t.Helper()
	lb := &logBuffer{}
	o := Options{Dir: dir, Logger: lb.logger()}
	if tweak != nil {
		tweak(&o)
	}
	s, err := Open(o)
	if err != nil {
		t.Fatalf("open store: %v\nlog:\n%s", err, lb)
	}
	t.Cleanup(func() { s.Close() })
	return s, lb
}

// abandon simulates a crash: the background work stops and the files are
// closed without any of Close's syncing or index saving. What the kernel
// has is what the next Open finds, as after kill -9.
func (s *Store) abandon() {
	s.mu.Lock()
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()
	for _, ns := range s.spaces {
		ns.mu.Lock()
		ns.gone = ErrClosed
		ns.closeFilesLocked()
		ns.mu.Unlock()
	}
	s.unlock()
}

func mustNS(t *testing.T, s *Store, name string) *Namespace {
	t.Helper()
	ns, err := s.Namespace(name)
	if err != nil {
		ns, err = s.Create(name)
	}
	if err != nil {
		t.Fatal(err)
	}
	return ns
}

func mustSet(t *testing.T, ns *Namespace, key, value string) []byte {
	t.Helper()
	k, _, err := ns.Set([]byte(key), []byte(value))
	if err != nil {
		t.Fatalf("set %q: %v", key, err)
	}
	return k
}

// wantState checks that ns holds exactly want (key → value).
func wantState(t *testing.T, ns *Namespace, want map[string]string) {
	t.Helper()
	got := map[string]string{}
	var after uint64
	for {
		items, err := ns.Scan(after, 100)
		if err != nil {
			t.Fatal(err)
		}
		if len(items) == 0 {
			break
		}
		for _, it := range items {
			v, found, err := ns.Get(it.Key)
			if err != nil || !found {
				t.Fatalf("get %q: found %v, %v", it.Key, found, err)
			}
			if _, dup := got[string(it.Key)]; dup {
				t.Fatalf("scan returned %q twice", it.Key)
			}
			got[string(it.Key)] = string(v)
		}
		after = items[len(items)-1].LSN
	}
	if len(got) != len(want) {
		t.Fatalf("namespace %s holds %d keys, want %d", ns.name, len(got), len(want))
	}
	for k, v := range want {
		if got[k] != v {
			t.Fatalf("key %q = %.20q, want %.20q", k, got[k], v)
		}
	}
	if in, _ := ns.Info(); in.Entries != len(want) {
		t.Fatalf("Info().Entries = %d, want %d", in.Entries, len(want))
	}
}

// dataFiles lists the namespace's data file paths, oldest first.
func dataFiles(t *testing.T, dir, ns string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, ns, "d*.dat"))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func fileSize(t *testing.T, path string) int64 {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	return st.Size()
}

// startServer serves store on 127.0.0.1:0 until the end of the test.
func startServer(t *testing.T, store *Store, cfg ServerConfig) (*Server, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := NewServer(store, cfg)
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		if err := srv.Close(); err != nil {
			t.Errorf("server close: %v", err)
		}
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
	})
	return srv, ln.Addr().String()
}

// conn opens one client connection (a session: SELECT and AUTH stick to it).
func conn(t *testing.T, addr string) *redis.Conn {
	t.Helper()
	rdb := redis.NewClient(&redis.Options{
		Addr: addr, Protocol: 2, DisableIdentity: true, MaxRetries: -1,
		ReadTimeout: 10 * time.Second, PoolSize: 1,
	})
	c := rdb.Conn()
	t.Cleanup(func() { c.Close(); rdb.Close() })
	return c
}

// do runs one command and returns its reply.
func do(t *testing.T, c *redis.Conn, args ...any) (any, error) {
	t.Helper()
	return c.Do(context.Background(), args...).Result()
}

// ok runs a command that must succeed.
func ok(t *testing.T, c *redis.Conn, args ...any) any {
	t.Helper()
	v, err := do(t, c, args...)
	if err != nil {
		t.Fatalf("%v: %v", args, err)
	}
	return v
}

// fails runs a command that must fail with an error containing want.
func fails(t *testing.T, c *redis.Conn, want string, args ...any) error {
	t.Helper()
	v, err := do(t, c, args...)
	if err == nil || errors.Is(err, redis.Nil) {
		t.Fatalf("%v = %v, want an error containing %q", args, v, want)
	}
	if !strings.Contains(err.Error(), want) {
		t.Fatalf("%v: error %q, want it to contain %q", args, err, want)
	}
	return err
}

func eq(t *testing.T, what string, got, want any) {
	t.Helper()
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("%s = %v, want %v", what, got, want)
	}
}
