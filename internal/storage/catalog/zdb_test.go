package catalog

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/zdb"
)

// startZDB runs a real zdb server in this process over a temporary
// directory, with one password-protected namespace, until the test ends.
func startZDB(t *testing.T) (addr, ns, password string) {
	t.Helper()
	store, err := zdb.Open(zdb.Options{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	ns, password = "store", "0123456789abcdef"
	n, err := store.Create(ns)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Configure("password", password); err != nil {
		t.Fatal(err)
	}
	if err := n.Configure("public", "0"); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := zdb.NewServer(store, zdb.ServerConfig{AdminPassword: "admin-" + password})
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ln) }()
	t.Cleanup(func() {
		_ = srv.Close()
		<-done
		_ = store.Close()
	})
	return ln.Addr().String(), ns, password
}

// TestMixedBackendsFromConfig: three dir and three zdb backends, from a
// config file, through a store opened twice.
func TestMixedBackendsFromConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	var b strings.Builder
	b.WriteString("k: 4\nm: 2\nsegment_size: 65536\nbackends:\n")
	for i := range 3 {
		fmt.Fprintf(&b, "  - {id: d%d, type: dir, path: d%d, domain: disk%d}\n", i, i, i)
		addr, ns, pw := startZDB(t)
		fmt.Fprintf(&b, "  - {id: z%d, type: zdb, address: %q, namespace: %s, password: %s, domain: zdb%d}\n", i, addr, ns, pw, i)
	}
	path := filepath.Join(dir, "store.yaml")
	if err := os.WriteFile(path, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	cfg, err := LoadConfig(path)
	if err != nil {
		t.Fatal(err)
	}
	sec := secret(t)
	open := func(init bool) *Store {
		bs, err := cfg.OpenBackends(nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { CloseBackends(bs) })
		o := Options{Params: cfg.Params(), Backends: bs}
		f := Open
		if init {
			f = Init
		}
		s, err := f(t.Context(), o, sec)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	data := randBytes(t, 200<<10)
	if _, err := open(true).Put(t.Context(), "x", bytes.NewReader(data), 0o600, time.Now()); err != nil {
		t.Fatal(err)
	}
	if got := getBytes(t, open(false), "x"); !bytes.Equal(got, data) {
		t.Fatal("read back other data")
	}
}

func TestZDBShardSizeLimit(t *testing.T) {
	t.Parallel()
	_, err := ParseConfig("s.yaml", []byte("k: 2\nm: 1\nsegment_size: 16777216\nbackends:\n  - {id: z, type: zdb, address: a:1, namespace: n}\n"))
	if err == nil || !strings.Contains(err.Error(), "zdb") {
		t.Fatalf("16 MiB segments at k=2 over zdb: %v", err)
	}
}
