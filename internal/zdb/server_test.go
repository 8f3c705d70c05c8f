package zdb

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha1"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

func sha1hex(s string) string {
	sum := sha1.Sum([]byte(s))
	return hex.EncodeToString(sum[:])
}

func TestNamespacesAndAuth(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, t.TempDir(), nil)
	_, addr := startServer(t, s, ServerConfig{AdminPassword: "root-pw"})

	admin := conn(t, addr)
	fails(t, admin, "Permission denied", "NSNEW", "vault")
	fails(t, admin, "Access denied", "AUTH", "wrong")
	eq(t, "AUTH", ok(t, admin, "AUTH", "root-pw"), "OK")
	ok(t, admin, "NSNEW", "vault")
	fails(t, admin, "not available", "NSNEW", "vault")
	fails(t, admin, "not allowed", "NSNEW", "../escape")
	ok(t, admin, "NSSET", "vault", "password", "s3cret")
	ok(t, admin, "NSSET", "vault", "public", "0")
	fails(t, admin, "Cannot update default", "NSSET", "default", "password", "x")
	fails(t, admin, "Invalid property", "NSSET", "vault", "colour", "blue")
	eq(t, "NSLIST", ok(t, admin, "NSLIST"), []any{"default", "vault"})

	user := conn(t, addr)
	fails(t, user, "Permission denied", "NSSET", "vault", "password", "mine")
	fails(t, user, "protected and private", "SELECT", "vault")
	fails(t, user, "Access denied", "SELECT", "vault", "guess")
	fails(t, user, "Namespace not found", "SELECT", "nowhere")
	eq(t, "SELECT", ok(t, user, "SELECT", "vault", "s3cret"), "OK")
	eq(t, "SET", ok(t, user, "SET", "k", "v"), "k")

	// Challenge–response: the password never crosses the wire; a response
	// works once.
	sec := conn(t, addr)
	fails(t, sec, "No CHALLENGE", "SELECT", "vault", "SECURE", sha1hex("x:s3cret"))
	nonce := ok(t, sec, "AUTH", "SECURE", "CHALLENGE").(string)
	if len(nonce) != 32 {
		t.Fatalf("nonce %q", nonce)
	}
	fails(t, sec, "Access denied", "SELECT", "vault", "SECURE", sha1hex(nonce+":wrong"))
	nonce = ok(t, sec, "AUTH", "SECURE", "CHALLENGE").(string)
	resp := sha1hex(nonce + ":s3cret")
	eq(t, "SELECT SECURE", ok(t, sec, "SELECT", "vault", "SECURE", resp), "OK")
	eq(t, "GET", ok(t, sec, "GET", "k"), "v")
	fails(t, sec, "No CHALLENGE", "SELECT", "vault", "SECURE", resp)
	ok(t, sec, "AUTH", "SECURE", "CHALLENGE")
	fails(t, sec, "Invalid hash length", "AUTH", "SECURE", "abc")
	fails(t, sec, "No CHALLENGE", "AUTH", "SECURE", sha1hex("spent"))
	nonce = ok(t, sec, "AUTH", "SECURE", "CHALLENGE").(string)
	eq(t, "AUTH SECURE", ok(t, sec, "AUTH", "SECURE", strings.ToUpper(sha1hex(nonce+":root-pw"))), "OK")
	ok(t, sec, "NSNEW", "made-by-secure-admin")

	// public + password: read-only without the password.
	ok(t, admin, "NSSET", "vault", "public", "1")
	ro := conn(t, addr)
	ok(t, ro, "SELECT", "vault")
	eq(t, "read-only GET", ok(t, ro, "GET", "k"), "v")
	fails(t, ro, "read-only", "SET", "k", "other")
	fails(t, ro, "read-only", "DEL", "k")

	info := ok(t, admin, "NSINFO", "vault").(string)
	for _, want := range []string{"name: vault", "entries: 1", "public: yes", "password: yes", "mode: userkey"} {
		if !strings.Contains(info, want) {
			t.Fatalf("NSINFO lacks %q:\n%s", want, info)
		}
	}
	if strings.Contains(info, "s3cret") {
		t.Fatal("NSINFO shows the password")
	}

	// NSDEL: not the default, not your own; users of it are cut off.
	fails(t, admin, "Cannot remove default", "NSDEL", "default")
	ok(t, admin, "SELECT", "vault", "s3cret")
	fails(t, admin, "currently using", "NSDEL", "vault")
	ok(t, admin, "SELECT", "default")
	eq(t, "NSDEL", ok(t, admin, "NSDEL", "vault"), "OK")
	fails(t, user, "not available anymore", "GET", "k")
	fails(t, admin, "Namespace not found", "SELECT", "vault")
}

func TestNoAdminPasswordMeansEveryoneIsAdmin(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, t.TempDir(), nil)
	_, addr := startServer(t, s, ServerConfig{})
	c := conn(t, addr)
	ok(t, c, "NSNEW", "free")
	fails(t, c, "Authentication disabled", "AUTH", "anything")
}

func TestAuthFailuresCloseTheConnection(t *testing.T) {
	t.Parallel()
	s, lb := openStore(t, t.TempDir(), nil)
	_, addr := startServer(t, s, ServerConfig{AdminPassword: "pw", Logger: lb.logger()})
	c := conn(t, addr)
	for range maxAuthFailures - 1 {
		fails(t, c, "Access denied", "AUTH", "guess")
	}
	fails(t, c, "Too many failed authentications", "AUTH", "guess")
	if _, err := do(t, c, "PING"); err == nil {
		t.Fatal("connection still open after too many failed AUTH")
	}
	if strings.Contains(lb.String(), "guess") {
		t.Fatal("a tried password reached the log")
	}
}

func TestUserMode(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, t.TempDir(), nil)
	_, addr := startServer(t, s, ServerConfig{})
	c := conn(t, addr)
	eq(t, "PING", ok(t, c, "PING"), "PONG")
	bin := "\x00\xff key\r\n"
	eq(t, "SET", ok(t, c, "SET", bin, "value"), bin)
	eq(t, "GET", ok(t, c, "GET", bin), "value")
	if _, err := do(t, c, "SET", bin, "value"); !errors.Is(err, redis.Nil) {
		t.Fatalf("SET of the same value: %v, want nil reply", err)
	}
	eq(t, "EXISTS", ok(t, c, "EXISTS", bin), 1)
	eq(t, "LENGTH", ok(t, c, "LENGTH", bin), 5)
	eq(t, "CHECK", ok(t, c, "CHECK", bin), 1)
	eq(t, "DBSIZE", ok(t, c, "DBSIZE"), 1)
	eq(t, "DEL", ok(t, c, "DEL", bin), "OK")
	fails(t, c, "Key not found", "DEL", bin)
	eq(t, "EXISTS after DEL", ok(t, c, "EXISTS", bin), 0)
	if _, err := do(t, c, "GET", bin); !errors.Is(err, redis.Nil) {
		t.Fatalf("GET after DEL: %v", err)
	}
	fails(t, c, "key needed", "SET", "", "v")
	fails(t, c, "Key too large", "SET", strings.Repeat("k", 256), "v")
	fails(t, c, "Invalid arguments", "GET")
	fails(t, c, "Command not supported", "FLUSHALL")
	ok(t, c, "SET", "k", "v", "1700000000") // admin only: everyone is admin here
	eq(t, "KEYTIME", ok(t, c, "KEYTIME", "k"), 1700000000)

	big := bytes.Repeat([]byte{0xa5}, MaxValueSize)
	ok(t, c, "SET", "big", big)
	fails(t, c, "Value too large", "SET", "big2", append(big, 1))
	got := ok(t, c, "GET", "big").(string)
	if got != string(big) {
		t.Fatalf("8 MiB value came back as %d bytes", len(got))
	}
	eq(t, "FSYNC", ok(t, c, "FSYNC"), "OK")
	tm := ok(t, c, "TIME").([]any)
	if len(tm) != 2 {
		t.Fatalf("TIME = %v", tm)
	}
	if info := ok(t, c, "INFO").(string); !strings.Contains(info, "sync_policy: batch") {
		t.Fatalf("INFO:\n%s", info)
	}
}

func TestSeqModeOverTheWire(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, t.TempDir(), nil)
	_, addr := startServer(t, s, ServerConfig{})
	c := conn(t, addr)
	ok(t, c, "NSNEW", "log")
	ok(t, c, "NSSET", "log", "mode", "seq")
	ok(t, c, "SELECT", "log")
	var keys []string
	for i := range 3 {
		k := ok(t, c, "SET", "", fmt.Sprint("entry ", i)).(string)
		if want := string(binary.LittleEndian.AppendUint64(nil, uint64(i))); k != want {
			t.Fatalf("seq key %d = %x, want %x", i, k, want)
		}
		keys = append(keys, k)
	}
	eq(t, "GET seq 1", ok(t, c, "GET", keys[1]), "entry 1")
	eq(t, "update", ok(t, c, "SET", keys[1], "changed"), keys[1])
	fails(t, c, "only update", "SET", string(binary.LittleEndian.AppendUint64(nil, 7)), "x")
	fails(t, c, "Cannot change mode", "NSSET", "log", "mode", "user")
	if info := ok(t, c, "NSINFO", "log").(string); !strings.Contains(info, "mode: sequential") {
		t.Fatalf("NSINFO:\n%s", info)
	}
}

func TestScanWalksEveryKeyOnce(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, t.TempDir(), nil)
	_, addr := startServer(t, s, ServerConfig{})
	c := conn(t, addr)
	fails(t, c, "No more data", "SCAN")
	want := map[string]bool{}
	for i := range 1000 {
		k := fmt.Sprintf("key:%d", i)
		ok(t, c, "SET", k, strings.Repeat("v", i%50))
		want[k] = true
	}
	ok(t, c, "DEL", "key:500")
	delete(want, "key:500")

	seen := map[string]bool{}
	args := []any{"SCAN"}
	for calls := 0; ; calls++ {
		v, err := do(t, c, args...)
		if err != nil {
			if !strings.Contains(err.Error(), "No more data") {
				t.Fatal(err)
			}
			break
		}
		reply := v.([]any)
		for _, e := range reply[1].([]any) {
			f := e.([]any)
			k := f[0].(string)
			if seen[k] || !want[k] {
				t.Fatalf("scan returned %q (seen before: %v, exists: %v)", k, seen[k], want[k])
			}
			seen[k] = true
			var i int64
			fmt.Sscanf(k, "key:%d", &i)
			eq(t, "size of "+k, f[1], i%50)
		}
		args = []any{"SCAN", reply[0]}
	}
	if len(seen) != len(want) {
		t.Fatalf("scan saw %d keys, want %d", len(seen), len(want))
	}
	cur := ok(t, c, "KEYCUR", "key:997")
	v := ok(t, c, "SCAN", cur).([]any)
	entries := v[1].([]any)
	eq(t, "keys after key:997", len(entries), 2)
	first := entries[0].([]any)
	eq(t, "first after key:997", first[0], "key:998")
	eq(t, "its size", first[1], 998%50)
	fails(t, c, "Invalid key format", "SCAN", "not a cursor")
	fails(t, c, "Key not found", "KEYCUR", "key:500")
}

func TestNamespaceFull(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, t.TempDir(), nil)
	_, addr := startServer(t, s, ServerConfig{})
	c := conn(t, addr)
	ok(t, c, "NSNEW", "small")
	ok(t, c, "NSSET", "small", "maxsize", "2000")
	ok(t, c, "SELECT", "small")
	ok(t, c, "SET", "a", strings.Repeat("x", 600))
	err := fails(t, c, NamespaceFullMessage, "SET", "b", strings.Repeat("x", 1500))
	if !IsNamespaceFull(err) {
		t.Fatalf("IsNamespaceFull(%q) = false", err)
	}
	if IsNamespaceFull(errors.New("Access denied")) || IsNamespaceFull(nil) {
		t.Fatal("IsNamespaceFull matches other errors")
	}
	ok(t, c, "SET", "a", strings.Repeat("y", 900)) // replacing counts the new size only
	ok(t, c, "DEL", "a")
	// 1800 bytes of live payload fit, but the disk holds both values of a:
	// the write compacts them away first.
	ok(t, c, "SET", "b", strings.Repeat("x", 1800))
	ok(t, c, "SET", "c", "1")
	fails(t, c, NamespaceFullMessage, "SET", "d", strings.Repeat("x", 200))
	if info := ok(t, c, "NSINFO", "small").(string); !strings.Contains(info, "space_available: 199") {
		t.Fatalf("NSINFO:\n%s", info)
	}
	fails(t, c, "Invalid property value", "NSSET", "small", "maxsize", "-5")
}

func TestServerRestartKeepsData(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, _ := openStore(t, dir, nil)
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	srv := NewServer(s, ServerConfig{AdminPassword: "pw"})
	go srv.Serve(ln)
	c := conn(t, ln.Addr().String())
	ok(t, c, "AUTH", "pw")
	ok(t, c, "NSNEW", "keep")
	ok(t, c, "NSSET", "keep", "password", "ns-pw")
	ok(t, c, "SELECT", "keep", "ns-pw")
	ok(t, c, "SET", "k", "survives")
	if err := srv.Close(); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, _ := openStore(t, dir, nil)
	_, addr := startServer(t, s2, ServerConfig{AdminPassword: "pw"})
	c2 := conn(t, addr)
	fails(t, c2, "Access denied", "SELECT", "keep", "wrong")
	ok(t, c2, "SELECT", "keep", "ns-pw")
	eq(t, "GET after restart", ok(t, c2, "GET", "k"), "survives")
}

func TestTooManyClientsRefused(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, t.TempDir(), nil)
	_, addr := startServer(t, s, ServerConfig{MaxClients: 2})
	ping := func() (net.Conn, string) {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nc.Close() })
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(nc, "PING\r\n")
		line, _ := bufio.NewReader(nc).ReadString('\n')
		return nc, line
	}
	a, la := ping()
	_, lb := ping()
	eq(t, "first two clients", la+lb, "+PONG\r\n+PONG\r\n")
	if _, line := ping(); !strings.Contains(line, "max number of clients") {
		t.Fatalf("third client got %q", line)
	}
	a.Close()
	deadline := time.Now().Add(5 * time.Second)
	for {
		if _, line := ping(); line == "+PONG\r\n" {
			break
		} else if time.Now().After(deadline) {
			t.Fatalf("a slot never freed up: %q", line)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Requests that announce more than the limits are cut off before they are
// buffered or parsed, and the server goes on serving others.
func TestOversizedRequestsCutOff(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, t.TempDir(), nil)
	_, addr := startServer(t, s, ServerConfig{})
	for _, raw := range []string{
		"*9223372036854775807\r\n",
		"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$9000000\r\n",
		"*1\r\n$99999999999999999999\r\n",
		strings.Repeat("x", maxInlineRequest+10),
		"*2\r\n+PING\r\n",
	} {
		nc, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		nc.SetDeadline(time.Now().Add(5 * time.Second))
		io.WriteString(nc, raw)
		line, _ := bufio.NewReader(nc).ReadString('\n')
		if !strings.HasPrefix(line, "-ERR") {
			t.Fatalf("%.30q: reply %q, want an error", raw, line)
		}
		if _, err := nc.Read(make([]byte, 1)); err == nil {
			t.Fatalf("%.30q: connection still open", raw)
		}
		nc.Close()
	}
	eq(t, "PING after abuse", ok(t, conn(t, addr), "PING"), "PONG")
}

// The storage client may use go-redis with its defaults (RESP3 HELLO,
// CLIENT SETINFO, a pool): the handshake must fall back cleanly.
func TestGoRedisDefaultOptions(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, t.TempDir(), nil)
	_, addr := startServer(t, s, ServerConfig{AdminPassword: "pw"})
	rdb := redis.NewClient(&redis.Options{Addr: addr, Password: "pw"})
	defer rdb.Close()
	ctx := context.Background()
	if err := rdb.Set(ctx, "k", "v", 0).Err(); err != nil {
		t.Fatal(err)
	}
	if v, err := rdb.Get(ctx, "k").Result(); err != nil || v != "v" {
		t.Fatalf("GET = %q, %v", v, err)
	}
	if err := rdb.Do(ctx, "NSNEW", "via-pool").Err(); err != nil {
		t.Fatalf("admin command after AUTH in the handshake: %v", err)
	}
}
