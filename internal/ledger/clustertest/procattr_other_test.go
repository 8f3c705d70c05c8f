//go:build !linux

package clustertest

import "syscall"

// childAttr has nothing to add where there is no Pdeathsig; cleanups still
// kill the validators when the test ends normally.
func childAttr() *syscall.SysProcAttr { return nil }
