package main

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/hub"
	"github.com/zerogrid/zerogrid/internal/release"
)

type hubFlags struct {
	dir, listen, bootDir string
	releaseRoot          string
	maxManifest, maxBlob string
	maxUploads           int
}

func newHubCmd(g *globals) *cobra.Command {
	f := &hubFlags{}
	cmd := &cobra.Command{
		Use:   "hub --dir DIR [--listen ADDR]",
		Short: "Run the image hub: an OCI distribution registry stored in a directory",
		Long: `Serves an OCI distribution registry (the API that docker, podman, crane,
skopeo and 'zgrid image push' speak) at http://ADDR, storing everything in
DIR: blobs by digest, manifests, tags. A restart keeps all of it.

The hub checks every upload against its digest before storing it, and
nodes check what they pull against the digest they asked for: a digest
always names the same bytes. Pushing is open to anyone who can reach ADDR,
so by default the hub listens on 127.0.0.1 only.

It also serves the release repository of node software under /tuf/ (The
Update Framework; files in DIR/tuf). With --release-root FILE it takes
pushes from 'zgrid release push' that verify from that root (a threshold of
the release keys' signatures, versions only going up): no account is
needed, and nothing unsigned is ever served as a release. Without it the
hub serves what DIR/tuf holds (a mirror) and refuses pushes.

Prints 'hub ready: http://ADDR' when it listens. Stop with Ctrl-C or
SIGTERM.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error { return runHub(cmd, g, f) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.dir, "dir", "", "directory holding the hub's store (created if missing)")
	fl.StringVar(&f.listen, "listen", "127.0.0.1:5000", "listen address host:port (port 0 picks a free one)")
	fl.StringVar(&f.maxManifest, "max-manifest-size", "4MiB", "largest manifest accepted (bytes, or with KiB, MiB, GiB)")
	fl.StringVar(&f.maxBlob, "max-blob-size", "2GiB", "largest blob (layer or config) accepted (bytes, or with KiB, MiB, GiB)")
	fl.StringVar(&f.releaseRoot, "release-root", "", "root metadata of the release repository whose pushes this hub takes (from 'zgrid release init')")
	fl.StringVar(&f.bootDir, "boot-dir", "", "also serve this directory's files read-only under /boot/ (what 'zgrid os build --out' writes), for machines that boot from the network")
	fl.IntVar(&f.maxUploads, "max-uploads", hub.DefaultMaxUploads, "upload sessions in progress at once")
	return cmd
}

func runHub(cmd *cobra.Command, g *globals, f *hubFlags) error {
	if f.dir == "" {
		return fmt.Errorf("--dir DIR is required: the hub's images are stored there")
	}
	maxManifest, err := parseSize("--max-manifest-size", f.maxManifest)
	if err != nil {
		return err
	}
	maxBlob, err := parseSize("--max-blob-size", f.maxBlob)
	if err != nil {
		return err
	}
	log := g.logger().With("module", "hub")
	rel := &release.Handler{Dir: filepath.Join(f.dir, "tuf"), Log: log.With("module", "release")}
	if f.releaseRoot != "" {
		if rel.Root, err = os.ReadFile(f.releaseRoot); err != nil {
			return fmt.Errorf("--release-root: %w", err)
		}
	}
	srv, err := hub.New(hub.Config{Dir: f.dir, Logger: log, MaxManifestBytes: maxManifest, MaxBlobBytes: maxBlob, MaxUploads: f.maxUploads, Release: rel, BootDir: f.bootDir})
	if err != nil {
		return err
	}
	if err := rel.Init(); err != nil { // after hub.New has made or checked its directory
		return err
	}
	if err := srv.Start(f.listen); err != nil {
		return fmt.Errorf("%w (is another hub running there? pick another port with --listen)", err)
	}
	addr := srv.Addr().String()
	if !loopback(addr) {
		log.Warn("the hub accepts pushes from anyone who can reach it", "addr", addr)
	}
	fmt.Fprintf(cmd.OutOrStdout(), "hub ready: http://%s\n", addr)
	<-cmd.Context().Done()
	log.Info("stopping hub")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	return srv.Shutdown(ctx)
}

func loopback(addr string) bool {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return false
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// parseSize reads a byte count: digits, optionally followed by KiB, MiB,
// GiB or TiB.
func parseSize(flag, text string) (int64, error) {
	s, mult := text, int64(1)
	for i, unit := range []string{"KiB", "MiB", "GiB", "TiB"} {
		if num, ok := strings.CutSuffix(s, unit); ok {
			s, mult = strings.TrimSpace(num), int64(1)<<(10*(i+1))
			break
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 || n > (1<<62)/mult {
		return 0, fmt.Errorf("%s %q: want a positive number of bytes, optionally with KiB, MiB, GiB or TiB (e.g. 512MiB)", flag, text)
	}
	return n * mult, nil
}
