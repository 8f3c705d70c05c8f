//go:build !linux

package zos

import (
	"fmt"
	"os"
)

// RunPID1 is Linux only: Zero-OS is a Linux kernel with zgridd as PID 1.
func RunPID1() {
	fmt.Fprintln(os.Stderr, "zgridd init: Zero-OS runs only on Linux")
	os.Exit(1)
}
