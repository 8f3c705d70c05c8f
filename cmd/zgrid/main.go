// Command zgrid is the zerogrid user's tool: keys, twins, farms, names,
// images, deployments, dispersed storage, exposed ports, the ledger's
// status, and a local development grid (zgrid up). It only parses flags
// and wires internal packages.
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRoot(os.Stdout, os.Stderr).ExecuteContext(ctx)
	stop()
	if err != nil {
		fmt.Fprintln(os.Stderr, "zgrid: "+err.Error())
		os.Exit(1)
	}
}
