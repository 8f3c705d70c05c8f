package main

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestZDBSocketAndStop serves on a unix socket only its owner may use, in
// seq mode (--mode), and stops on an admin's STOP.
func TestZDBSocketAndStop(t *testing.T) {
	t.Setenv("ZGRID_ZDB_ADMIN", "")
	sock := filepath.Join(t.TempDir(), "zdb.sock")
	root := newRoot()
	root.SetArgs([]string{"zdb", "--dir", t.TempDir(), "--socket", sock, "--mode", "seq"})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(t.Context()) }()
	var c net.Conn
	var err error
	for range 100 {
		if c, err = net.Dial("unix", sock); err == nil {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err != nil {
		t.Fatalf("dial %s: %v", sock, err)
	}
	defer c.Close()
	fi, err := os.Stat(sock)
	if err != nil || fi.Mode().Perm() != 0o600 {
		t.Fatalf("socket mode %v (%v), want 0600", fi.Mode().Perm(), err)
	}
	r := bufio.NewReader(c)
	send := func(args ...string) string {
		fmt.Fprintf(c, "*%d\r\n", len(args))
		for _, a := range args {
			fmt.Fprintf(c, "$%d\r\n%s\r\n", len(a), a)
		}
		line, err := r.ReadString('\n')
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		if strings.HasPrefix(line, "$") && line != "$-1\r\n" {
			var n int
			fmt.Sscanf(line, "$%d", &n)
			b := make([]byte, n+2)
			if _, err := io.ReadFull(r, b); err != nil {
				t.Fatal(err)
			}
			return string(b[:n])
		}
		return strings.TrimRight(line, "\r\n")
	}
	if got := send("SET", "", "hello"); got != "\x00\x00\x00\x00\x00\x00\x00\x00" {
		t.Fatalf("SET in --mode seq: %q, want id 0", got)
	}
	if got := send("STOP"); got != "+Stopping" {
		t.Fatalf("STOP: %q", got)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("zdb after STOP: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("zdb did not stop after STOP")
	}
	if _, err := os.Stat(sock); !os.IsNotExist(err) {
		t.Fatalf("socket left behind: %v", err)
	}
	// --socket and --listen together are refused.
	root = newRoot()
	root.SetArgs([]string{"zdb", "--dir", t.TempDir(), "--socket", sock, "--listen", "127.0.0.1:0"})
	if err := root.Execute(); err == nil || !strings.Contains(err.Error(), "not both") {
		t.Fatalf("--socket with --listen: %v", err)
	}
}
