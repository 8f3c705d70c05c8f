package hub

import (
	"archive/tar"
	"bufio"
	"cmp"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// Artifact is what the hub stores under a digest and a client pushes: an
// image (v1.Image) or an index (v1.ImageIndex).
type Artifact interface {
	MediaType() (types.MediaType, error)
	Digest() (v1.Hash, error)
	Size() (int64, error)
	RawManifest() ([]byte, error)
}

// RootFSConfig is the configuration given to an image made from a root
// filesystem tarball. Zero fields take defaults.
type RootFSConfig struct {
	Entrypoint []string
	Cmd        []string
	Env        []string // default: a conventional PATH
	OS         string   // default linux
	Arch       string   // default: this machine's (runtime.GOARCH)
}

// defaultPath is the PATH container runtimes conventionally give an image
// that sets none.
const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// OpenSource opens what `zgrid image push PATH` pushes: an OCI image layout
// directory (its index.json must list exactly one image or index), or a
// root-filesystem tarball (plain or gzip-compressed tar) made into a
// one-layer image with cfg. A layout carries its own configuration, so cfg
// must then set no entrypoint or command.
func OpenSource(p string, cfg RootFSConfig) (Artifact, error) {
	fi, err := os.Stat(p)
	if err != nil {
		return nil, err
	}
	if fi.IsDir() {
		if len(cfg.Entrypoint) > 0 || len(cfg.Cmd) > 0 {
			return nil, fmt.Errorf("%s is an OCI layout, which carries its own configuration: an entrypoint or command applies to a root-filesystem tarball only", p)
		}
		return FromLayout(p)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s", ErrBadSource, p)
	}
	return FromRootFS(p, cfg)
}

// FromLayout returns the one image or index that the OCI image layout in
// dir lists in its index.json.
func FromLayout(dir string) (Artifact, error) {
	if _, err := os.Stat(filepath.Join(dir, "oci-layout")); err != nil {
		return nil, fmt.Errorf("%w: directory %s has no oci-layout file", ErrBadSource, dir)
	}
	idx, err := layout.ImageIndexFromPath(dir)
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: %w", dir, err)
	}
	im, err := idx.IndexManifest()
	if err != nil {
		return nil, fmt.Errorf("OCI layout %s: index.json: %w", dir, err)
	}
	if len(im.Manifests) != 1 {
		return nil, fmt.Errorf("OCI layout %s lists %d manifests in index.json; push one at a time (copy the one you want into a layout of its own, e.g. with skopeo or crane)", dir, len(im.Manifests))
	}
	d := im.Manifests[0]
	switch {
	case d.MediaType.IsImage():
		return idx.Image(d.Digest)
	case d.MediaType.IsIndex():
		return idx.ImageIndex(d.Digest)
	}
	return nil, fmt.Errorf("OCI layout %s: index.json lists %s of media type %q, not an image or index", dir, d.Digest, d.MediaType)
}

// FromRootFS makes a one-layer OCI image of the root-filesystem tarball at
// p. The same tarball and configuration always give the same digest: the
// layer is compressed deterministically and the configuration carries no
// time stamp.
func FromRootFS(p string, cfg RootFSConfig) (v1.Image, error) {
	if err := checkTar(p); err != nil {
		return nil, err
	}
	layer, err := tarball.LayerFromFile(p, tarball.WithMediaType(types.OCILayer))
	if err != nil {
		return nil, fmt.Errorf("layer from %s: %w", p, err)
	}
	img, err := mutate.AppendLayers(mutate.MediaType(empty.Image, types.OCIManifestSchema1), layer)
	if err != nil {
		return nil, err
	}
	img = mutate.ConfigMediaType(img, types.OCIConfigJSON)
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = cmp.Or(cfg.OS, "linux"), cmp.Or(cfg.Arch, runtime.GOARCH)
	cf.Config.Entrypoint = slices.Clone(cfg.Entrypoint)
	cf.Config.Cmd = slices.Clone(cfg.Cmd)
	cf.Config.Env = slices.Clone(cfg.Env)
	if len(cf.Config.Env) == 0 {
		cf.Config.Env = []string{defaultPath}
	}
	return mutate.ConfigFile(img, cf)
}

// checkTar reads the tar archive at p (gzip-compressed or not) to its end:
// it must have at least one entry, and no entry may name a path outside
// the root. Unpackers must still check: this is for a clear early error.
func checkTar(p string) error {
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var r io.Reader = br
	if magic, _ := br.Peek(2); len(magic) == 2 && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return fmt.Errorf("%w: %s: %w", ErrBadSource, p, err)
		}
		r = zr
	}
	tr := tar.NewReader(r)
	n := 0
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w: %s: entry %d: %w", ErrBadSource, p, n+1, err)
		}
		if climbs(h.Name) || (h.Typeflag == tar.TypeLink && climbs(h.Linkname)) {
			return fmt.Errorf("%w: %s: entry %q climbs out of the root", ErrBadSource, p, h.Name)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("%w: %s is an empty tar archive", ErrBadSource, p)
	}
	return nil
}

// climbs reports whether a tar entry's name has a ".." component.
func climbs(name string) bool {
	return slices.Contains(strings.Split(name, "/"), "..")
}
