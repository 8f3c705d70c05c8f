package zos

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"path"
	"slices"
	"strings"

	"github.com/cavaliergopher/cpio"
	"github.com/klauspost/compress/gzip"
)

// Limits of ReadImage, far above any real image, so that a hostile archive
// cannot exhaust memory.
const (
	maxImageBytes   = 1 << 30
	maxImageEntries = 1 << 16
)

// File is one entry of an initramfs.
type File struct {
	Path string      // absolute and clean: "/init", "/lib/x86_64-linux-gnu"
	Mode fs.FileMode // permission bits, plus fs.ModeDir or fs.ModeSymlink
	Data []byte      // a regular file's contents, a symlink's target
}

// Image is an initramfs being built or read: a tree of directories,
// regular files and symlinks. Device nodes are not needed: the kernel's
// built-in initramfs already holds /dev/console, and PID 1 mounts devtmpfs.
// The zero Image is empty and ready to use.
type Image struct {
	files map[string]*File
}

// AddDir adds directory p and its parents.
func (im *Image) AddDir(p string) {
	if im.files == nil {
		im.files = map[string]*File{}
	}
	for p != "/" {
		if f, ok := im.files[p]; ok && f.Mode.IsDir() {
			return
		}
		im.files[p] = &File{Path: p, Mode: fs.ModeDir | 0o755}
		p = path.Dir(p)
	}
}

// AddFile adds a regular file with mode perm at p, and p's parents;
// adding a path twice replaces it.
func (im *Image) AddFile(p string, perm fs.FileMode, data []byte) {
	im.AddDir(path.Dir(p))
	im.files[p] = &File{Path: p, Mode: perm & (fs.ModePerm | fs.ModeSetuid | fs.ModeSetgid), Data: data}
}

// AddSymlink adds a symlink at p pointing to target.
func (im *Image) AddSymlink(p, target string) {
	im.AddDir(path.Dir(p))
	im.files[p] = &File{Path: p, Mode: fs.ModeSymlink | 0o777, Data: []byte(target)}
}

// Files lists the image's entries sorted by path, so parents come before
// their children.
func (im *Image) Files() []File {
	out := make([]File, 0, len(im.files))
	for _, f := range im.files {
		out = append(out, *f)
	}
	slices.SortFunc(out, func(a, b File) int { return strings.Compare(a.Path, b.Path) })
	return out
}

// Size is the sum of the regular files' sizes.
func (im *Image) Size() int64 {
	var n int64
	for _, f := range im.files {
		if f.Mode.IsRegular() {
			n += int64(len(f.Data))
		}
	}
	return n
}

// open opens a regular file of the image, following symlinks, for
// linkClosure.
func (im *Image) open(name string) (io.ReaderAt, error) {
	for range 40 {
		f, ok := im.files[path.Clean(name)]
		switch {
		case !ok:
			return nil, fmt.Errorf("%s: %w", name, errNotInImage)
		case f.Mode&fs.ModeSymlink != 0:
			target := string(f.Data)
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(f.Path), target)
			}
			name = target
		case f.Mode.IsRegular():
			return bytes.NewReader(f.Data), nil
		default:
			return nil, fmt.Errorf("%s: not a regular file: %w", name, errNotInImage)
		}
	}
	return nil, fmt.Errorf("%s: too many symlinks: %w", name, errNotInImage)
}

// WriteTo writes the image as a gzip-compressed cpio archive in the "newc"
// format the kernel unpacks. The output depends only on the image's
// contents: entries are sorted, times and owners are zero.
func (im *Image) WriteTo(w io.Writer) (int64, error) {
	cw := &countWriter{w: w}
	zw, err := gzip.NewWriterLevel(cw, gzip.DefaultCompression)
	if err != nil {
		return 0, err
	}
	bw := bufio.NewWriterSize(zw, 1<<20)
	aw := cpio.NewWriter(bw)
	for _, f := range im.Files() {
		h := &cpio.Header{Name: strings.TrimPrefix(f.Path, "/"), Mode: cpio.FileMode(f.Mode.Perm()), Links: 1}
		switch {
		case f.Mode.IsDir():
			h.Mode |= cpio.TypeDir
			h.Links = 2
		case f.Mode&fs.ModeSymlink != 0:
			h.Mode |= cpio.TypeSymlink
			h.Size = int64(len(f.Data))
		default:
			h.Mode |= cpio.TypeReg
			h.Size = int64(len(f.Data))
			if f.Mode&fs.ModeSetuid != 0 {
				h.Mode |= cpio.ModeSetuid
			}
			if f.Mode&fs.ModeSetgid != 0 {
				h.Mode |= cpio.ModeSetgid
			}
		}
		if err := aw.WriteHeader(h); err != nil {
			return cw.n, fmt.Errorf("write %s: %w", f.Path, err)
		}
		if h.Size > 0 {
			if _, err := aw.Write(f.Data); err != nil {
				return cw.n, fmt.Errorf("write %s: %w", f.Path, err)
			}
		}
	}
	if err := aw.Close(); err != nil {
		return cw.n, err
	}
	if err := bw.Flush(); err != nil {
		return cw.n, err
	}
	err = zw.Close()
	return cw.n, err
}

type countWriter struct {
	w io.Writer
	n int64
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// ReadImage reads an initramfs as WriteTo writes it: a cpio "newc"
// archive, gzip-compressed or not. It accepts directories, regular files
// and symlinks with clean relative names, and refuses anything else (device
// nodes, "..", duplicate names), and archives beyond 1 GiB or 65536 entries.
func ReadImage(r io.Reader) (*Image, error) {
	br := bufio.NewReader(r)
	var src io.Reader = br
	if magic, err := br.Peek(2); err == nil && magic[0] == 0x1f && magic[1] == 0x8b {
		zr, err := gzip.NewReader(br)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadImage, err)
		}
		defer zr.Close()
		src = zr
	}
	lr := &io.LimitedReader{R: src, N: maxImageBytes + 1}
	ar := cpio.NewReader(lr)
	im := &Image{files: map[string]*File{}}
	for n := 0; ; n++ {
		h, err := ar.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("%w: entry %d: %v", ErrBadImage, n, err)
		}
		if n >= maxImageEntries || lr.N <= 0 {
			return nil, fmt.Errorf("%w: larger than %d bytes or %d entries", ErrBadImage, maxImageBytes, maxImageEntries)
		}
		if err := im.addEntry(h, ar, lr); err != nil {
			return nil, err
		}
	}
	if lr.N <= 0 {
		return nil, fmt.Errorf("%w: larger than %d bytes", ErrBadImage, maxImageBytes)
	}
	return im, nil
}

func (im *Image) addEntry(h *cpio.Header, ar *cpio.Reader, lr *io.LimitedReader) error {
	name := strings.TrimPrefix(h.Name, "./")
	p := "/" + name
	if name == "" || name == "." || path.Clean(p) != p || strings.Contains(name, "\x00") {
		return fmt.Errorf("%w: entry name %q is not a clean relative path", ErrBadImage, h.Name)
	}
	if _, dup := im.files[p]; dup {
		return fmt.Errorf("%w: %s appears twice", ErrBadImage, p)
	}
	if h.Size < 0 || h.Size > lr.N {
		return fmt.Errorf("%w: %s: size %d out of range", ErrBadImage, p, h.Size)
	}
	perm := fs.FileMode(h.Mode.Perm())
	switch h.Mode & cpio.ModeType {
	case cpio.TypeDir:
		im.files[p] = &File{Path: p, Mode: fs.ModeDir | perm}
	case cpio.TypeSymlink:
		im.files[p] = &File{Path: p, Mode: fs.ModeSymlink | perm, Data: []byte(h.Linkname)}
	case cpio.TypeReg:
		data, err := io.ReadAll(io.LimitReader(ar, h.Size))
		if err != nil || int64(len(data)) != h.Size {
			return fmt.Errorf("%w: %s: truncated (%v)", ErrBadImage, p, err)
		}
		if h.Mode&cpio.ModeSetuid != 0 {
			perm |= fs.ModeSetuid
		}
		if h.Mode&cpio.ModeSetgid != 0 {
			perm |= fs.ModeSetgid
		}
		im.files[p] = &File{Path: p, Mode: perm, Data: data}
	default:
		return fmt.Errorf("%w: %s: mode %o is not a directory, file or symlink", ErrBadImage, p, uint32(h.Mode))
	}
	return nil
}
