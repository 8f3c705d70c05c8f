package main

import (
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/hub"
)

type imagePushFlags struct {
	hub, repo, tag, arch string
	entrypoint, cmd      []string
	insecure             bool
}

func newImageCmd(g *globals) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "image",
		Short: "Push images to a hub",
	}
	cmd.AddCommand(newImagePushCmd(g))
	return cmd
}

func newImagePushCmd(g *globals) *cobra.Command {
	f := &imagePushFlags{}
	cmd := &cobra.Command{
		Use:   "push PATH",
		Short: "Push an OCI image layout or a root-filesystem tarball to a hub",
		Long: `Pushes PATH to the hub and prints the pinned reference that deployments
use, HOST:PORT/REPO@sha256:HEX (with -o json: repo, digest, size,
media_type, reference).

PATH is either an OCI image layout directory (with an oci-layout file and
one image or index in index.json) or a tar archive of a root filesystem
(plain or gzip-compressed), which becomes a one-layer linux image with the
given --entrypoint and --cmd. Repeat --entrypoint and --cmd for each
argument: --entrypoint /bin/server --cmd --port --cmd 8080. The same
tarball and flags always give the same digest.

The hub is --hub, else $ZGRID_HUB, else http://127.0.0.1:5000. Plain http://
is used only for a hub on this machine unless --insecure.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error { return runImagePush(cmd, g, f, args[0]) },
	}
	fl := cmd.Flags()
	fl.StringVar(&f.hub, "hub", envOr("ZGRID_HUB", "http://127.0.0.1:5000"), "hub URL (env ZGRID_HUB)")
	fl.StringVar(&f.repo, "repo", "", "repository to push to (default: from PATH's file name)")
	fl.StringVar(&f.tag, "tag", "", "also tag the image (by default only its digest names it)")
	fl.StringArrayVar(&f.entrypoint, "entrypoint", nil, "tarball only: one argument of the entrypoint (repeat)")
	fl.StringArrayVar(&f.cmd, "cmd", nil, "tarball only: one argument of the command (repeat)")
	fl.StringVar(&f.arch, "arch", "", "tarball only: CPU architecture of the image (default: this machine's)")
	fl.BoolVar(&f.insecure, "insecure", false, "allow plain http:// to a hub that is not on this machine")
	return cmd
}

func runImagePush(cmd *cobra.Command, g *globals, f *imagePushFlags, path string) error {
	repo := f.repo
	if repo == "" {
		repo = repoFromPath(path)
		if !hub.ValidRepo(repo) {
			return fmt.Errorf("cannot make a repository name from %q: pass --repo NAME (lower-case letters, digits, . _ -)", filepath.Base(path))
		}
	}
	if err := hub.CheckRepoTag(repo, f.tag); err != nil {
		return err
	}
	c, err := hub.NewClient(f.hub, hub.ClientOptions{Insecure: f.insecure})
	if errors.Is(err, hub.ErrInsecure) {
		return fmt.Errorf("%w: use https://, or pass --insecure if you accept that the image travels in clear (digests are still checked)", err)
	} else if err != nil {
		return err
	}
	src, err := hub.OpenSource(path, hub.RootFSConfig{Entrypoint: f.entrypoint, Cmd: f.cmd, Arch: f.arch})
	if err != nil {
		return err
	}
	if err := c.Ping(cmd.Context()); err != nil {
		return hubHint(err)
	}
	pushed, err := c.Push(cmd.Context(), repo, f.tag, src)
	if err != nil {
		return hubHint(fmt.Errorf("push %s to %s: %w", path, f.hub, err))
	}
	return g.print(pushed, func(w io.Writer) { fmt.Fprintln(w, pushed.Reference) })
}

// hubHint adds what to do when the hub is not there.
func hubHint(err error) error {
	if errors.Is(err, hub.ErrUnreachable) {
		return fmt.Errorf("%w (start one with `zgridd hub --dir DIR --listen HOST:PORT`, or point --hub or ZGRID_HUB at a running hub)", err)
	}
	return err
}

// repoFromPath makes a repository name of PATH's file name: lower-cased,
// archive extensions dropped, other characters turned into "-".
func repoFromPath(p string) string {
	base := strings.ToLower(filepath.Base(filepath.Clean(p)))
	for _, ext := range []string{".tar.gz", ".tgz", ".tar"} {
		if s, ok := strings.CutSuffix(base, ext); ok {
			base = s
			break
		}
	}
	b := []byte(base)
	for i, c := range b {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			b[i] = '-'
		}
	}
	return strings.Trim(string(b), ".-_")
}
