package zdbbackend

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/storage"
	"github.com/zerogrid/zerogrid/internal/storage/backendtest"
)

// TestConformance runs the storage.Backend suite against a real zdb
// server, a fresh password-protected namespace per subtest.
func TestConformance(t *testing.T) {
	t.Parallel()
	backendtest.Run(t, func(t *testing.T) storage.Backend {
		s := startZDB(t)
		pw := randomHex(t)
		return newBackend(t, s.addr, s.namespace(pw, ""), pw, 0)
	})
}

func TestConformanceWithoutPassword(t *testing.T) {
	t.Parallel()
	backendtest.Run(t, func(t *testing.T) storage.Backend {
		s := startZDB(t)
		return newBackend(t, s.addr, s.namespace("", ""), "", 0)
	})
}

// wantUnavailable checks err is a retryable ErrUnavailable whose message
// contains every string of want and no secret.
func wantUnavailable(t *testing.T, what string, err error, secrets []string, want ...string) {
	t.Helper()
	t.Logf("%s: %v", what, err)
	if !errors.Is(err, storage.ErrUnavailable) || !storage.IsRetryable(err) {
		t.Fatalf("%s: %v, want a retryable ErrUnavailable", what, err)
	}
	for _, w := range want {
		if !strings.Contains(err.Error(), w) {
			t.Errorf("%s: error %q does not say %q", what, err, w)
		}
	}
	for _, s := range secrets {
		if strings.Contains(err.Error(), s) {
			t.Errorf("%s: error %q contains a password", what, err)
		}
	}
}

func TestWrongPassword(t *testing.T) {
	t.Parallel()
	s := startZDB(t)
	right, wrong := randomHex(t), randomHex(t)
	ns := s.namespace(right, "")
	b := newBackend(t, s.addr, ns, wrong, 0)
	ctx := context.Background()
	secrets := []string{right, wrong}
	want := []string{"authentication", ns, s.addr, "Access denied", "check the namespace password"}

	wantUnavailable(t, "Put", b.Put(ctx, "x", []byte("data")), secrets, want...)
	_, err := b.Get(ctx, "x", 0, -1)
	wantUnavailable(t, "Get", err, secrets, want...)
	_, err = b.Stat(ctx, "x")
	wantUnavailable(t, "Stat", err, secrets, want...)
	wantUnavailable(t, "Delete", b.Delete(ctx, "x"), secrets, want...)
	wantUnavailable(t, "List", b.List(ctx, "", func(storage.Info) error { return nil }), secrets, want...)

	// Nothing was written, as the right password shows.
	good := newBackend(t, s.addr, ns, right, 0)
	if _, err := good.Stat(ctx, "x"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("Stat with the right password: %v, want ErrNotFound", err)
	}
}

func TestMissingNamespace(t *testing.T) {
	t.Parallel()
	s := startZDB(t)
	b := newBackend(t, s.addr, "no-such-ns", "pw", 0)
	err := b.Put(context.Background(), "x", []byte("data"))
	wantUnavailable(t, "Put", err, nil, "no-such-ns", "Namespace not found", "NSNEW")
}

func TestServerStoppedAndBack(t *testing.T) {
	t.Parallel()
	s := startZDB(t)
	pw := randomHex(t)
	b := newBackend(t, s.addr, s.namespace(pw, ""), pw, 2*time.Second)
	ctx := context.Background()
	if err := b.Put(ctx, "before", []byte("kept")); err != nil {
		t.Fatal(err)
	}

	s.stop()
	secrets := []string{pw}
	wantUnavailable(t, "Put", b.Put(ctx, "during", []byte("x")), secrets, s.addr)
	_, err := b.Get(ctx, "before", 0, -1)
	wantUnavailable(t, "Get", err, secrets, s.addr)
	_, err = b.Stat(ctx, "before")
	wantUnavailable(t, "Stat", err, secrets, s.addr)
	wantUnavailable(t, "Delete", b.Delete(ctx, "before"), secrets, s.addr)
	wantUnavailable(t, "List", b.List(ctx, "", func(storage.Info) error { return nil }), secrets, s.addr)

	// Same directory, same address: the same backend reconnects and
	// authenticates again, and the data is there.
	s.start()
	got, err := b.Get(ctx, "before", 0, -1)
	if err != nil || string(got) != "kept" {
		t.Fatalf("Get after restart = %q, %v; want \"kept\"", got, err)
	}
}

func TestConnectionRefused(t *testing.T) {
	t.Parallel()
	s := startZDB(t)
	addr := s.addr
	s.stop() // nothing listens on addr now
	b := newBackend(t, addr, "ns", "pw", time.Second)
	wantUnavailable(t, "Put", b.Put(context.Background(), "x", []byte("x")), nil, addr)
}

func TestNamespaceFull(t *testing.T) {
	t.Parallel()
	s := startZDB(t)
	pw := randomHex(t)
	ns := s.namespace(pw, "1000")
	b := newBackend(t, s.addr, ns, pw, 0)
	ctx := context.Background()
	if err := b.Put(ctx, "a", make([]byte, 600)); err != nil {
		t.Fatal(err)
	}
	err := b.Put(ctx, "b", make([]byte, 500))
	if !errors.Is(err, storage.ErrFull) || storage.IsRetryable(err) {
		t.Fatalf("Put past maxsize: %v, want a permanent ErrFull", err)
	}
	if !strings.Contains(err.Error(), ns) || !strings.Contains(err.Error(), "No space left") {
		t.Errorf("ErrFull message %q does not name the namespace and the server's reason", err)
	}
	if _, err := b.Stat(ctx, "b"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a refused Put left an object: Stat = %v", err)
	}
	// Deleting frees space at once.
	if err := b.Delete(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "b", make([]byte, 500)); err != nil {
		t.Fatalf("Put after freeing space: %v", err)
	}
}

func TestDataSurvivesRestart(t *testing.T) {
	t.Parallel()
	s := startZDB(t)
	pw := randomHex(t)
	ns := s.namespace(pw, "")
	ctx := context.Background()
	want := map[string][]byte{}
	b := newBackend(t, s.addr, ns, pw, 0)
	for i, size := range []int{0, 1, 1000, 300 << 10} {
		name := "obj-" + string(rune('a'+i))
		want[name] = bytes.Repeat([]byte{byte(i + 1)}, size)
		if err := b.Put(ctx, name, want[name]); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.Delete(ctx, "obj-b"); err != nil {
		t.Fatal(err)
	}
	delete(want, "obj-b")

	s.stop()
	s.start()
	b2 := newBackend(t, s.addr, ns, pw, 0) // a new client, as after a reboot
	got := map[string]int64{}
	if err := b2.List(ctx, "obj-", func(i storage.Info) error { got[i.Name] = i.Size; return nil }); err != nil {
		t.Fatal(err)
	}
	if len(got) != len(want) {
		t.Fatalf("after restart List = %v, want %d objects", got, len(want))
	}
	for name, data := range want {
		v, err := b2.Get(ctx, name, 0, -1)
		if err != nil || !bytes.Equal(v, data) || got[name] != int64(len(data)) {
			t.Fatalf("after restart %s: %d bytes (listed %d), %v; want %d bytes", name, len(v), got[name], err, len(data))
		}
	}
}

func TestObjectSizeLimit(t *testing.T) {
	t.Parallel()
	s := startZDB(t)
	pw := randomHex(t)
	b := newBackend(t, s.addr, s.namespace(pw, ""), pw, 0)
	ctx := context.Background()

	biggest := bytes.Repeat([]byte{0xa5}, MaxObjectSize)
	if err := b.Put(ctx, "max", biggest); err != nil {
		t.Fatalf("Put of exactly MaxObjectSize: %v", err)
	}
	if got, err := b.Get(ctx, "max", MaxObjectSize-3, -1); err != nil || !bytes.Equal(got, biggest[:3]) {
		t.Fatalf("Get of the tail: %x, %v", got, err)
	}

	err := b.Put(ctx, "over", make([]byte, MaxObjectSize+1))
	if !errors.Is(err, ErrTooLarge) || !errors.Is(err, storage.ErrFull) || storage.IsRetryable(err) {
		t.Fatalf("Put over the limit: %v, want a permanent ErrTooLarge and ErrFull", err)
	}
	if !strings.Contains(err.Error(), "8388608") {
		t.Errorf("error %q does not state the limit", err)
	}
	if _, err := b.Stat(ctx, "over"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a refused Put left an object: Stat = %v", err)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	good := Config{ID: "zdb-1", Address: "127.0.0.1:9900", Namespace: "ns", Password: "hunter2-secret"}
	tests := []struct {
		name  string
		edit  func(*Config)
		field string
	}{
		{"empty ID", func(c *Config) { c.ID = "" }, "ID"},
		{"ID with address", func(c *Config) { c.ID = "127.0.0.1:9900" }, "ID"},
		{"no address", func(c *Config) { c.Address = "" }, "Address"},
		{"no namespace", func(c *Config) { c.Namespace = "" }, "Namespace"},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }, "Timeout"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := good
			tc.edit(&c)
			b, err := New(c)
			if err == nil {
				b.Close()
				t.Fatal("New accepted the config")
			}
			if !strings.Contains(err.Error(), "field "+tc.field) || strings.Contains(err.Error(), good.Password) {
				t.Fatalf("error %q should name field %s and not hold the password", err, tc.field)
			}
		})
	}
	b, err := New(good)
	if err != nil {
		t.Fatal(err)
	}
	defer b.Close()
	if strings.Contains(b.String(), good.Password) || strings.Contains(good.String(), good.Password) {
		t.Fatal("String() shows the password")
	}
	if b.ID() != "zdb-1" || b.Domain() != "" {
		t.Fatalf("ID, Domain = %q, %q", b.ID(), b.Domain())
	}
}

// TestPublicNamespaceRefused: a namespace with a password that is public
// can be read by anyone without the password, so the backend refuses it,
// naming the command that makes it private; once private it works.
func TestPublicNamespaceRefused(t *testing.T) {
	t.Parallel()
	s := startZDB(t)
	pw := randomHex(t)
	name := s.namespace(pw, "")
	ns, err := s.store.Namespace(name)
	if err != nil {
		t.Fatal(err)
	}
	if err := ns.Configure("public", "1"); err != nil {
		t.Fatal(err)
	}
	b := newBackend(t, s.addr, name, pw, 0)
	ctx := context.Background()
	err = b.Put(ctx, "x", []byte("data"))
	wantUnavailable(t, "Put to a public namespace", err, []string{pw}, "is public", "NSSET "+name+" public 0", s.addr)
	if !errors.Is(err, ErrPublicNamespace) {
		t.Fatalf("Put: %v, want ErrPublicNamespace", err)
	}
	_, err = b.Get(ctx, "x", 0, -1)
	wantUnavailable(t, "Get from a public namespace", err, []string{pw}, "is public")

	if err := ns.Configure("public", "0"); err != nil {
		t.Fatal(err)
	}
	if err := b.Put(ctx, "x", []byte("data")); err != nil {
		t.Fatalf("Put after NSSET public 0: %v", err)
	}
}
