package main

import (
	"bufio"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// assertNoListeners fails if process pid owns a listening TCP socket or a
// bound UDP socket: the node agent must only dial out.
func assertNoListeners(t *testing.T, pid int) {
	t.Helper()
	if len(socketInodes(t, pid)) == 0 {
		t.Fatalf("process %d has no sockets at all: it cannot be talking to the ledger", pid)
	}
	for _, l := range listeners(t, pid) {
		t.Errorf("node process %d listens: %s", pid, l)
	}
}

// listeners lists pid's listening TCP and bound, unconnected UDP sockets.
func listeners(t *testing.T, pid int) []string {
	inodes := socketInodes(t, pid)
	var out []string
	for _, table := range []string{"tcp", "tcp6", "udp", "udp6"} {
		f, err := os.Open(fmt.Sprintf("/proc/%d/net/%s", pid, table))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		sc.Scan() // header
		for sc.Scan() {
			fields := strings.Fields(sc.Text())
			if len(fields) < 10 || !inodes[fields[9]] {
				continue
			}
			listening := fields[3] == "0A" // TCP_LISTEN
			if strings.HasPrefix(table, "udp") {
				listening = fields[3] == "07" && strings.HasSuffix(fields[2], ":0000") // unconnected, bound
			}
			if listening {
				out = append(out, table+" "+fields[1])
			}
		}
		f.Close()
	}
	return out
}

// TestListenersSeesListeners checks the detector itself on this process.
func TestListenersSeesListeners(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	u, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer u.Close()
	got := strings.Join(listeners(t, os.Getpid()), " ")
	for _, addr := range []net.Addr{l.Addr(), u.LocalAddr()} {
		port := fmt.Sprintf(":%04X", addr.(interface{ AddrPort() netip.AddrPort }).AddrPort().Port())
		if !strings.Contains(got, port) {
			t.Errorf("listener %s not detected in %q", addr, got)
		}
	}
}

func socketInodes(t *testing.T, pid int) map[string]bool {
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	for _, fd := range fds {
		target, err := os.Readlink(filepath.Join(fmt.Sprintf("/proc/%d/fd", pid), fd.Name()))
		if err == nil && strings.HasPrefix(target, "socket:[") {
			out[strings.TrimSuffix(strings.TrimPrefix(target, "socket:["), "]")] = true
		}
	}
	return out
}
