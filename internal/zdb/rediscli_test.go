package zdb

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"os/exec"
	"strings"
	"testing"
	"time"
)

// redisCLI returns a function that runs the real redis-cli against addr
// with args and stdin, or skips the test when redis-cli is missing.
func redisCLI(t *testing.T, addr string) func(stdin string, args ...string) string {
	t.Helper()
	bin, err := exec.LookPath("redis-cli")
	if err != nil {
		t.Skip("redis-cli not installed (Debian package redis-tools); CI installs it")
	}
	host, port, _ := net.SplitHostPort(addr)
	return func(stdin string, args ...string) string {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		cmd := exec.CommandContext(ctx, bin, append([]string{"-h", host, "-p", port}, args...)...)
		cmd.Stdin = strings.NewReader(stdin)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("redis-cli %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
}

func TestRedisCLI(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, t.TempDir(), nil)
	_, addr := startServer(t, s, ServerConfig{AdminPassword: "adm"})
	cli := redisCLI(t, addr)

	// One connection, commands from stdin, replies in redis-cli's raw form.
	script := strings.Join([]string{
		"AUTH adm", "NSNEW vault", "NSSET vault password pw", "NSSET vault public 0",
		"NSNEW log", "NSSET log mode seq", "NSLIST",
		"SELECT vault pw", `SET greeting "hello world"`, "GET greeting", "EXISTS greeting",
		"SET other 1", "DEL other", "EXISTS other", "DBSIZE", "GET missing",
		"SELECT log", `SET "" first`, `SET "" second`, "DBSIZE", "NSSET log maxsize 8", `SET "" toolarge`,
	}, "\n") + "\n"
	want := strings.Join([]string{
		"OK", "OK", "OK", "OK",
		"OK", "OK", "default\nlog\nvault",
		"OK", "greeting", "hello world", "1",
		"other", "OK", "0", "1", "",
		"OK", "\x00\x00\x00\x00\x00\x00\x00\x00", "\x01\x00\x00\x00\x00\x00\x00\x00", "2", "OK",
		"No space left on this namespace (namespace log is full: maxsize 8 bytes, 11 used, value 8 bytes)\n",
	}, "\n") + "\n" // redis-cli's raw mode ends an error with an empty line
	if got := cli(script); got != want {
		t.Fatalf("redis-cli session:\n got: %q\nwant: %q", got, want)
	}

	// A new connection: the password is needed again, and checked.
	if got := cli("", "SELECT", "vault", "wrong"); !strings.Contains(got, "Access denied") {
		t.Fatalf("wrong password: %q", got)
	}
	if got := cli("", "SELECT", "vault"); !strings.Contains(got, "protected and private") {
		t.Fatalf("no password: %q", got)
	}

	// A binary value through -x (stdin as the last argument), back intact.
	val := make([]byte, 1<<20)
	rand.Read(val)
	blob := hex.EncodeToString(val)
	if got := cli(blob, "-x", "SET", "blob"); strings.TrimSpace(got) != "blob" {
		t.Fatalf("SET -x: %q", got)
	}
	if got := cli("", "GET", "blob"); strings.TrimSuffix(got, "\n") != blob {
		t.Fatalf("GET blob: %d bytes back, want %d", len(got), len(blob)+1)
	}
}

// The challenge–response needs the nonce before the answer: drive one
// redis-cli process line by line.
func TestRedisCLISecureSelect(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, t.TempDir(), nil)
	ns := mustNS(t, s, "vault")
	ns.Configure("password", "pw")
	ns.Configure("public", "0")
	mustSet(t, ns, "k", "secret value")
	_, addr := startServer(t, s, ServerConfig{})
	redisCLI(t, addr) // skips without redis-cli
	host, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command("redis-cli", "-h", host, "-p", port)
	stdin, _ := cmd.StdinPipe()
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer stdin.Close()
	lines := bufio.NewReader(stdout)
	ask := func(line string) string {
		t.Helper()
		io.WriteString(stdin, line+"\n")
		got := make(chan string, 1)
		go func() { l, _ := lines.ReadString('\n'); got <- strings.TrimSuffix(l, "\n") }()
		select {
		case l := <-got:
			return l
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			t.Fatalf("redis-cli did not answer %q", line)
			return ""
		}
	}
	askErr := func(line string) string { // an error reply is followed by an empty line
		t.Helper()
		reply := ask(line)
		if empty := ask(""); empty != "" {
			t.Fatalf("after error %q: %q", reply, empty)
		}
		return reply
	}
	nonce := ask("AUTH SECURE CHALLENGE")
	if len(nonce) != 32 {
		t.Fatalf("challenge %q", nonce)
	}
	eq(t, "wrong response", askErr("SELECT vault SECURE "+sha1hex(nonce+":nope")), "Access denied")
	nonce = ask("AUTH SECURE CHALLENGE")
	eq(t, "SELECT SECURE", ask("SELECT vault SECURE "+sha1hex(nonce+":pw")), "OK")
	eq(t, "GET", ask("GET k"), "secret value")
	if got := askErr("SELECT vault SECURE " + sha1hex(nonce+":pw")); !strings.Contains(got, "No CHALLENGE") {
		t.Fatalf("replayed response: %q", got)
	}
}
