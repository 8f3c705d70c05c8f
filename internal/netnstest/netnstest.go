// Package netnstest helps tests build hosts out of network namespaces:
// it creates named namespaces joined by veth pairs or a bridge, runs
// commands and Go code inside them, and removes everything when the test
// ends. Only addresses inside the namespaces a test created are used.
package netnstest

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"sync/atomic"
	"testing"

	"golang.org/x/sys/unix"
)

// NeedRoot skips the test unless it runs as root with ip available, and
// with every tool named (e.g. "ping", "nft"; "/dev/net/tun" for a TUN).
func NeedRoot(t testing.TB, tools ...string) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	for _, tool := range append([]string{"ip"}, tools...) {
		if strings.HasPrefix(tool, "/") {
			if _, err := os.Stat(tool); err != nil {
				t.Skipf("%s missing: %v", tool, err)
			}
			continue
		}
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("%s missing: %v", tool, err)
		}
	}
}

// Run runs a command and fails the test if it fails.
func Run(t testing.TB, args ...string) {
	t.Helper()
	if out, err := exec.Command(args[0], args[1:]...).CombinedOutput(); err != nil {
		t.Fatalf("%s: %v: %s", strings.Join(args, " "), err, out)
	}
}

var seq atomic.Int32

// Name returns a name unique to this test process, starting with prefix,
// short enough for an interface name (15 bytes) when prefix has at most 5.
func Name(prefix string) string {
	return fmt.Sprintf("%s%d%c", prefix, os.Getpid()%100000, 'a'+rune(seq.Add(1)%26))
}

// NewNetns creates a namespace with its loopback up, removed at cleanup.
func NewNetns(t testing.TB, name string) string {
	t.Helper()
	Run(t, "ip", "netns", "add", name)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", name).Run() })
	Run(t, "ip", "-n", name, "link", "set", "lo", "up")
	return name
}

// In runs fn on a thread that has entered namespace ns: sockets, TUN
// devices and processes fn creates live in ns. The thread is discarded
// afterwards.
func In(t testing.TB, ns string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread dies with the goroutine
		f, err := os.Open("/run/netns/" + ns)
		if err != nil {
			t.Error(err)
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			t.Error(err)
			return
		}
		fn()
	}()
	<-done
}

// Exec runs a command inside namespace ns and returns its combined output.
func Exec(ns string, args ...string) ([]byte, error) {
	return exec.Command("ip", append([]string{"netns", "exec", ns}, args...)...).CombinedOutput()
}
