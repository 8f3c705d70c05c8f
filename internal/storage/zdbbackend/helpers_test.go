package zdbbackend

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/zdb"
)

// zdbServer is a real zdb server in this process, on 127.0.0.1, over a
// store in a temporary directory. It can be stopped and started again on
// the same directory and address.
type zdbServer struct {
	t     *testing.T
	dir   string
	addr  string
	store *zdb.Store
	srv   *zdb.Server
	done  chan error
}

// startZDB starts a server with an admin password, so the backend gets
// no admin rights by accident; it is stopped at the end of the test.
func startZDB(t *testing.T) *zdbServer {
	t.Helper()
	s := &zdbServer{t: t, dir: t.TempDir(), addr: "127.0.0.1:0"}
	s.start()
	t.Cleanup(s.stop)
	return s
}

func (s *zdbServer) start() {
	s.t.Helper()
	store, err := zdb.Open(zdb.Options{Dir: s.dir})
	if err != nil {
		s.t.Fatalf("open zdb store: %v", err)
	}
	ln, err := net.Listen("tcp", s.addr)
	if err != nil {
		store.Close()
		s.t.Fatalf("listen on %s: %v", s.addr, err)
	}
	s.addr = ln.Addr().String()
	s.store, s.srv, s.done = store, zdb.NewServer(store, zdb.ServerConfig{AdminPassword: randomHex(s.t)}), make(chan error, 1)
	go func() { s.done <- s.srv.Serve(ln) }()
	for s.srv.Addr() == nil { // Serve has not taken the listener yet
		time.Sleep(time.Millisecond)
	}
}

// stop closes the server and the store (a clean shutdown); a no-op when
// stopped.
func (s *zdbServer) stop() {
	if s.srv == nil {
		return
	}
	if err := s.srv.Close(); err != nil {
		s.t.Errorf("close zdb server: %v", err)
	}
	if err := <-s.done; err != nil {
		s.t.Errorf("zdb serve: %v", err)
	}
	if err := s.store.Close(); err != nil {
		s.t.Errorf("close zdb store: %v", err)
	}
	s.srv, s.store = nil, nil
}

// namespace creates a namespace with a random name and password (empty
// password: none) and maxsize (0: none).
func (s *zdbServer) namespace(password, maxsize string) string {
	s.t.Helper()
	name := "ns-" + randomHex(s.t)[:12]
	ns, err := s.store.Create(name)
	if err != nil {
		s.t.Fatalf("create namespace: %v", err)
	}
	if password != "" {
		if err := ns.Configure("password", password); err != nil {
			s.t.Fatal(err)
		}
		if err := ns.Configure("public", "0"); err != nil {
			s.t.Fatal(err)
		}
	}
	if maxsize != "" {
		if err := ns.Configure("maxsize", maxsize); err != nil {
			s.t.Fatal(err)
		}
	}
	return name
}

// backend returns a backend for namespace ns with password, closed at the
// end of the test.
func newBackend(t *testing.T, addr, ns, password string, timeout time.Duration) *Backend {
	t.Helper()
	b, err := New(Config{ID: "zdb-1", Domain: "host-a", Address: addr, Namespace: ns, Password: password, Timeout: timeout})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	t.Cleanup(func() {
		if err := b.Close(); err != nil && !errors.Is(err, net.ErrClosed) {
			t.Errorf("close backend: %v", err)
		}
	})
	return b
}

// randomHex is 128 random bits: a password as docs/formats/zdb.md asks.
func randomHex(t *testing.T) string {
	t.Helper()
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		t.Fatal(err)
	}
	return hex.EncodeToString(b[:])
}
