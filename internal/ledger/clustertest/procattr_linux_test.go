package clustertest

import "syscall"

// childAttr makes the kernel kill a validator if the test process dies
// without running its cleanups (a panic, or `go test -timeout`), so no
// validator outlives the test. Pdeathsig follows the thread that forked;
// Go only ends threads that a goroutine left locked, which this test never
// does.
func childAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
