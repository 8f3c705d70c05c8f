package main

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/zos"
)

func newInitCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "init",
		Short: "Run as PID 1 of Zero-OS, the node operating system (never returns)",
		Long: `Runs as the first process of the node OS that 'zgrid os build' makes, where
the kernel starts it as /init: mounts the kernel filesystems, loads the
kernel modules, reaps orphans, brings the network up by DHCP, fetches the
node release from the boot server, verifies it, runs it from memory and
restarts it with backoff. It logs every step and refusal to the console and
reads no input. See docs/boot.md.

It refuses to run as any other process than PID 1.`,
		Args: cobra.NoArgs,
		RunE: func(*cobra.Command, []string) error {
			if os.Getpid() != 1 {
				return fmt.Errorf("init runs only as PID 1 of the node OS (this is pid %d); boot an image from 'zgrid os build'", os.Getpid())
			}
			zos.RunPID1()
			return nil
		},
	}
}

// asInit reports whether the kernel started this binary as /init: then it
// runs `zgridd init` whatever its arguments (the kernel passes unknown
// command line words to init).
func asInit() bool { return os.Getpid() == 1 && os.Args[0] == "/init" }
