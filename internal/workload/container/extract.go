package container

import (
	"archive/tar"
	"bufio"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"github.com/klauspost/compress/zstd"

	"github.com/zerogrid/zerogrid/internal/workload/idmap"
)

// Whiteout markers of the OCI image layer format.
const (
	whiteoutPrefix = ".wh."
	whiteoutOpaque = ".wh..wh..opq"
)

// extractLimits bound what one image may unpack to.
type extractLimits struct {
	Bytes   int64 // file content, all layers together
	Entries int   // tar entries, all layers together
}

// extractor unpacks layers, in order, into one root filesystem. Every path
// is resolved through an os.Root, so nothing (no "..", no symlink planted
// by an earlier entry) can reach outside it. Device nodes and FIFOs are
// skipped: a container gets its /dev from runc.
type extractor struct {
	root    *os.Root
	limits  extractLimits
	ids     idmap.Range // maps the owners in the layers to host ids
	bytes   int64
	entries int
	skipped int             // device nodes and other unsupported entries
	written map[string]bool // paths written by the current layer
}

func newExtractor(root *os.Root, lim extractLimits, ids idmap.Range) *extractor {
	return &extractor{root: root, limits: lim, ids: ids}
}

// layer unpacks one (possibly gzip or zstd compressed) layer read from r,
// whose compressed bytes must hash to want ("sha256:<hex>").
func (x *extractor) layer(r io.Reader, want string) error {
	h := sha256.New()
	br := bufio.NewReader(io.TeeReader(r, h))
	tr, closeFn, err := decompress(br)
	if err != nil {
		return err
	}
	defer closeFn()
	x.written = map[string]bool{}
	if err := x.entriesOf(tar.NewReader(tr)); err != nil {
		return err
	}
	if _, err := io.Copy(io.Discard, br); err != nil { // hash what the tar reader left
		return err
	}
	return checkSum(h, want)
}

func checkSum(h hash.Hash, want string) error {
	if want == "" {
		return nil
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != want {
		return fmt.Errorf("%w: layer %s hashes to %s", ErrDigestMismatch, want, got)
	}
	return nil
}

// decompress sniffs the compression from the magic bytes.
func decompress(br *bufio.Reader) (io.Reader, func(), error) {
	magic, _ := br.Peek(4)
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, nil, fmt.Errorf("%w: gzip: %v", ErrImage, err)
		}
		return zr, func() { zr.Close() }, nil
	case bytes.Equal(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(256<<20))
		if err != nil {
			return nil, nil, fmt.Errorf("%w: zstd: %v", ErrImage, err)
		}
		return zr, zr.Close, nil
	}
	return br, func() {}, nil
}

func (x *extractor) entriesOf(tr *tar.Reader) error {
	for {
		hdr, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: tar: %v", ErrImage, err)
		}
		if x.entries++; x.entries > x.limits.Entries {
			return fmt.Errorf("%w: more than %d files", ErrImage, x.limits.Entries)
		}
		if err := x.entry(hdr, tr); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrImage, hdr.Name, err)
		}
	}
}

// clean maps a tar name to a path relative to the root; "" is the root.
func clean(name string) string {
	return strings.TrimPrefix(path.Clean("/"+name), "/")
}

func (x *extractor) entry(hdr *tar.Header, r io.Reader) error {
	p := clean(hdr.Name)
	if p == "" {
		return nil // the root itself keeps runc's idea of it
	}
	dir, base := path.Split(p)
	switch {
	case base == whiteoutOpaque:
		return x.opaque(clean(dir))
	case strings.HasPrefix(base, whiteoutPrefix):
		if target := clean(dir + strings.TrimPrefix(base, whiteoutPrefix)); target != "" && target != clean(dir) {
			return x.root.RemoveAll(target)
		}
		return nil
	}
	if d := clean(dir); d != "" {
		if err := x.root.MkdirAll(d, 0o755); err != nil {
			return err
		}
	}
	x.written[p] = true
	switch hdr.Typeflag {
	case tar.TypeDir:
		return x.dir(p, hdr)
	case tar.TypeReg:
		return x.file(p, hdr, r)
	case tar.TypeSymlink:
		return x.replace(p, func() error { return x.root.Symlink(hdr.Linkname, p) }, hdr, false)
	case tar.TypeLink:
		return x.replace(p, func() error { return x.root.Link(clean(hdr.Linkname), p) }, nil, false)
	default: // devices, FIFOs, anything else: never created
		x.skipped++
		delete(x.written, p)
		return nil
	}
}

// replace removes whatever is at p and calls create; then applies hdr's
// owner (and mode, when withMode).
func (x *extractor) replace(p string, create func() error, hdr *tar.Header, withMode bool) error {
	if err := x.root.RemoveAll(p); err != nil {
		return err
	}
	if err := create(); err != nil {
		return err
	}
	if hdr == nil {
		return nil
	}
	return x.own(p, hdr, withMode)
}

func (x *extractor) dir(p string, hdr *tar.Header) error {
	fi, err := x.root.Lstat(p)
	if err == nil && fi.IsDir() {
		return x.own(p, hdr, true)
	}
	return x.replace(p, func() error { return x.root.Mkdir(p, 0o700) }, hdr, true)
}

func (x *extractor) file(p string, hdr *tar.Header, r io.Reader) error {
	if x.bytes += hdr.Size; hdr.Size < 0 || x.bytes > x.limits.Bytes {
		return fmt.Errorf("image unpacks to more than %d bytes", x.limits.Bytes)
	}
	return x.replace(p, func() error {
		f, err := x.root.OpenFile(p, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if err != nil {
			return err
		}
		_, err = io.CopyN(f, r, hdr.Size)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		return err
	}, hdr, true)
}

// own sets owner (mapped to the host ids of the container's user
// namespace: one lchown per entry, the only cost of the mapping), then mode
// (chown clears set-id bits) and times.
func (x *extractor) own(p string, hdr *tar.Header, withMode bool) error {
	if err := x.root.Lchown(p, x.ids.Host(hdr.Uid), x.ids.Host(hdr.Gid)); err != nil && !errors.Is(err, fs.ErrPermission) {
		return err
	}
	if !withMode {
		return nil
	}
	mode := hdr.FileInfo().Mode() & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid | fs.ModeSticky)
	if err := x.root.Chmod(p, mode); err != nil {
		return err
	}
	return x.root.Chtimes(p, hdr.ModTime, hdr.ModTime)
}

// opaque empties dir of everything lower layers put there: what this
// layer wrote so far stays.
func (x *extractor) opaque(dir string) error {
	if dir != "" {
		if fi, err := x.root.Lstat(dir); err != nil || !fi.IsDir() {
			return nil
		}
	}
	return x.pruneUnwritten(dir)
}

func (x *extractor) pruneUnwritten(dir string) error {
	d := dir
	if d == "" {
		d = "."
	}
	ents, err := fs.ReadDir(x.root.FS(), d)
	if err != nil {
		return err
	}
	for _, e := range ents {
		p := path.Join(dir, e.Name())
		switch {
		case !x.written[p]:
			err = x.root.RemoveAll(p)
		case e.IsDir():
			err = x.pruneUnwritten(p)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
