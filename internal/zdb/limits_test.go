package zdb

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// raw dials addr from local (nil: any loopback address) and returns the
// connection with a reader of its replies; both close at the end of the
// test. Every read fails after 10 s, so a test that waits for a server
// that never answers fails instead of hanging.
func raw(t *testing.T, addr string, local net.Addr) (net.Conn, *bufio.Reader) {
	t.Helper()
	d := net.Dialer{LocalAddr: local, Timeout: 5 * time.Second}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	nc.SetDeadline(time.Now().Add(10 * time.Second))
	return nc, bufio.NewReader(nc)
}

// wantCut reads an error reply containing want, then the end of the
// connection.
func wantCut(t *testing.T, what string, r *bufio.Reader, want string) {
	t.Helper()
	line, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "-") || !strings.Contains(line, want) {
		t.Fatalf("%s: reply %q, %v; want an error containing %q", what, line, err, want)
	}
	if rest, err := io.ReadAll(r); err != nil || len(rest) > 0 {
		t.Fatalf("%s: connection not closed after the error: %q, %v", what, rest, err)
	}
}

func setHeader(key string, n int) string {
	return fmt.Sprintf("*3\r\n$3\r\nSET\r\n$%d\r\n%s\r\n$%d\r\n", len(key), key, n)
}

// TestSlowRequestCut: a client that starts a request and never finishes
// it (slowloris) is cut after the request timeout, with an error naming
// the flag, while other clients are served; a silent client is closed
// after the idle timeout.
func TestSlowRequestCut(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, t.TempDir(), nil)
	_, addr := startServer(t, s, ServerConfig{RequestTimeout: 300 * time.Millisecond, IdleTimeout: 500 * time.Millisecond})

	slow, r := raw(t, addr, nil)
	if _, err := io.WriteString(slow, setHeader("k", 10)+"abc"); err != nil {
		t.Fatal(err)
	}
	eq(t, "PING while a request hangs", ok(t, conn(t, addr), "PING"), "PONG")
	wantCut(t, "half-sent request", r, "--request-timeout")

	_, idle := raw(t, addr, nil)
	if b, err := io.ReadAll(idle); err != nil || len(b) > 0 {
		t.Fatalf("idle connection: read %q, %v; want it closed", b, err)
	}
}

// TestConnBufferBudget: a request announcing more than the connection's
// budget is refused before its body is sent; requests within it work.
func TestConnBufferBudget(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, t.TempDir(), nil)
	_, addr := startServer(t, s, ServerConfig{ConnBuffer: 1 << 20})

	big, r := raw(t, addr, nil)
	if _, err := io.WriteString(big, setHeader("k", 2<<20)); err != nil {
		t.Fatal(err)
	}
	wantCut(t, "2 MiB request, 1 MiB budget", r, "--conn-buffer")

	c := conn(t, addr)
	value := strings.Repeat("v", 900<<10)
	ok(t, c, "SET", "k", value)
	eq(t, "GET within the budget", ok(t, c, "GET", "k"), value)
}

// TestLimitsOnByDefault: a server configured with nothing has every limit.
func TestLimitsOnByDefault(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, t.TempDir(), nil)
	cfg := NewServer(s, ServerConfig{}).cfg
	if cfg.IdleTimeout != 5*time.Minute || cfg.RequestTimeout != 30*time.Second || cfg.ConnBuffer != DefaultConnBuffer ||
		cfg.MaxBuffer != 256<<20 || cfg.MaxConnsPerAddr != 32 || cfg.MaxClients != 1024 {
		t.Fatalf("defaults: %+v", cfg)
	}
}

// TestServerBufferBudget: while one client holds most of the server's
// buffer budget with a half-sent request, another client's large request
// is refused with an error naming the flag; small requests are served,
// and once the first request completes the budget is free again.
func TestServerBufferBudget(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, t.TempDir(), nil)
	srv, addr := startServer(t, s, ServerConfig{MaxBuffer: 3 << 20})

	holder, hr := raw(t, addr, nil)
	io.WriteString(holder, setHeader("a", 2<<20)+"partial")
	deadline := time.Now().Add(10 * time.Second)
	for srv.buffered.used.Load() < 2<<20 {
		if time.Now().After(deadline) {
			t.Fatalf("the half-sent request was never charged (%d bytes)", srv.buffered.used.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}

	second, r := raw(t, addr, nil)
	io.WriteString(second, setHeader("b", 2<<20))
	wantCut(t, "second 2 MiB request", r, "--max-buffer")
	eq(t, "PING meanwhile", ok(t, conn(t, addr), "PING"), "PONG")

	io.WriteString(holder, strings.Repeat("x", 2<<20-len("partial"))+"\r\n")
	if line, err := hr.ReadString('\n'); err != nil || line != "$1\r\n" {
		t.Fatalf("completed request: %q, %v", line, err)
	}
	c := conn(t, addr)
	ok(t, c, "SET", "b", strings.Repeat("y", 2<<20))
	eq(t, "GET b", len(ok(t, c, "GET", "b").(string)), 2<<20)

	// Every connection is idle now: nothing stays charged.
	deadline = time.Now().Add(10 * time.Second)
	for srv.buffered.used.Load() != 0 {
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes still charged with every connection idle", srv.buffered.used.Load())
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// TestConnectionsPerAddressCapped: the connection over the per-address
// cap is refused with an error; another address is still served.
func TestConnectionsPerAddressCapped(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, t.TempDir(), nil)
	_, addr := startServer(t, s, ServerConfig{MaxConnsPerAddr: 2})
	one := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)}
	for i := range 2 {
		nc, r := raw(t, addr, one)
		io.WriteString(nc, "PING\r\n")
		if line, err := r.ReadString('\n'); line != "+PONG\r\n" {
			t.Fatalf("connection %d: %q, %v", i+1, line, err)
		}
	}
	_, r := raw(t, addr, one)
	wantCut(t, "third connection from 127.0.0.1", r, "--max-conns-per-addr")

	other, r := raw(t, addr, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2)})
	io.WriteString(other, "PING\r\n")
	if line, err := r.ReadString('\n'); line != "+PONG\r\n" {
		t.Fatalf("connection from 127.0.0.2: %q, %v", line, err)
	}
}

// TestProtectDefault: a locked default namespace is read-only to every
// client until it selects default with the admin password.
func TestProtectDefault(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, t.TempDir(), nil)
	_, addr := startServer(t, s, ServerConfig{AdminPassword: "root-pw", ProtectDefault: true})
	c := conn(t, addr)
	fails(t, c, "read-only", "SET", "k", "v")
	fails(t, c, "Access denied", "SELECT", "default", "guess")
	ok(t, c, "SELECT", "default", "root-pw")
	ok(t, c, "SET", "k", "v")
	other := conn(t, addr)
	eq(t, "GET in the locked default", ok(t, other, "GET", "k"), "v")
	fails(t, other, "read-only", "DEL", "k")
}
