package main

import (
	"context"
	"log/slog"
	"net/netip"
	"os"
	"os/exec"

	"github.com/zerogrid/zerogrid/internal/overlay"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
	"github.com/zerogrid/zerogrid/internal/workload/zdb"
)

// zdbCommand is how the node agent starts the node's zdb server: this
// binary (as the agent runs it) with the zdb subcommand.
var zdbCommand = []string{"/proc/self/exe", "zdb"}

// addZDB registers the zdb manager: it serves on the node's overlay
// address only, so a node off the overlay, or one that cannot install
// the port's filter, runs no zdb workloads.
func addZDB(ms *managers, f *nodeFlags, log *slog.Logger, ov *overlay.Overlay) error {
	m, err := newZDB(f, log, ov)
	return ms.add(spec.TypeZDB, m, err, log)
}

func newZDB(f *nodeFlags, log *slog.Logger, ov *overlay.Overlay) (*zdb.Manager, error) {
	unavailable := func(why string) error { return &workload.UnavailableError{Type: spec.TypeZDB, Reason: why} }
	if ov == nil {
		return nil, unavailable("zdb workloads are served on the overlay only, and this node is not on it (start it with --overlay)")
	}
	nft, err := exec.LookPath("nft")
	if err != nil || os.Geteuid() != 0 {
		return nil, unavailable("the zdb port's filter needs root and nft (Debian package nftables)")
	}
	listen := netip.AddrPortFrom(ov.Address(), zdb.DefaultPort)
	if err := zdb.Guard(context.Background(), nft, listen, ov.Tun()); err != nil {
		return nil, unavailable(err.Error())
	}
	return zdb.New(zdb.Config{DataDir: f.data, Log: log.With("workload", "zdb"), Clock: workload.SystemClock{},
		Command: zdbCommand, Listen: listen})
}
