package fusefs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/zerogrid/zerogrid/internal/storage/catalog"
)

// fileNode is a regular file. While it is open for writing, its content
// lives in a spool file (sp) shared by its writable handles; the store
// sees it only when the spool is uploaded.
type fileNode struct {
	fs.Inode
	noXattr
	fsys *FS

	mu       sync.Mutex
	sp       *spool
	up       *upstream // streaming upload of sp, if any (stream.go)
	mode     uint32    // permissions for the upload of a new file
	uid, gid uint32    // owner for the upload
	unlinked bool      // removed while open: never upload
}

// spool is the local copy of a file being written.
type spool struct {
	f     *os.File
	size  int64
	dirty bool // changed since the last upload
	refs  int  // writable handles
	gen   int  // count of changes, to tell whether a stream saw them all
	mtime time.Time
	ctime time.Time // last change of content or attributes
}

var (
	_ fs.NodeGetattrer = (*fileNode)(nil)
	_ fs.NodeSetattrer = (*fileNode)(nil)
	_ fs.NodeOpener    = (*fileNode)(nil)
)

// pending reports whether the file is open for writing (its size and
// content may differ from the store's).
func (n *fileNode) pending() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.sp != nil && !n.unlinked
}

func (n *fileNode) unlink() {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.unlinked = true
	n.breakStream()
}

func (n *fileNode) path() string { return n.Path(nil) }

// attr fills out from the spool, if any, else from the catalog.
func (n *fileNode) attr(out *fuse.Attr) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.attrLocked(out)
}

func (n *fileNode) attrLocked(out *fuse.Attr) bool {
	if n.sp != nil {
		n.fsys.fill(out, catalog.Entry{Size: n.sp.size, Mode: n.mode, MTime: n.sp.mtime.UnixNano(),
			CTime: max(n.sp.ctime.UnixNano(), n.sp.mtime.UnixNano()), UID: n.uid, GID: n.gid})
		return true
	}
	e, ok := n.fsys.st.Lookup(n.path())
	if !ok || e.Dir {
		return false
	}
	n.fsys.fill(out, e)
	return true
}

// Getattr answers from the spool if the file is being written, from the
// handle's entry if the file's name is gone (unlinked or renamed over:
// fstat of an open descriptor still works), else from the catalog.
func (n *fileNode) Getattr(_ context.Context, fh fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.mu.Lock()
	defer n.mu.Unlock()
	if h, ok := fh.(*handle); ok && n.sp == nil && n.unlinked {
		h.mu.Lock()
		defer h.mu.Unlock()
		if h.offsets != nil {
			n.fsys.fill(&out.Attr, h.entry)
			return 0
		}
	}
	if !n.attrLocked(&out.Attr) {
		return syscall.ENOENT
	}
	return 0
}

// openSpool makes sure the node has a spool; with trunc it starts empty,
// otherwise it holds the stored content. Called with n.mu held, or before
// the node is published.
func (n *fileNode) openSpool(ctx context.Context, p string, trunc bool) error {
	if n.sp != nil {
		if trunc {
			return n.truncateLocked(0)
		}
		return nil
	}
	f, err := os.CreateTemp(n.fsys.cacheDir, "spool-*")
	if err != nil {
		return fmt.Errorf("spool file: %w", err)
	}
	os.Remove(f.Name()) // unnamed: nothing to clean after a crash
	sp := &spool{f: f, mtime: time.Now()}
	if e, ok := n.fsys.st.Lookup(p); ok {
		n.mode, n.uid, n.gid = e.Mode, e.UID, e.GID
		sp.mtime = time.Unix(0, e.MTime)
		if !trunc && e.Size > 0 {
			if _, _, err := n.fsys.st.Get(ctx, p, f); err != nil {
				f.Close()
				return err
			}
			sp.size = e.Size
		}
	} else if !trunc {
		f.Close()
		return fmt.Errorf("%w: %q", catalog.ErrNotFound, p)
	}
	n.sp = sp
	n.fsys.spooled(n, true)
	return nil
}

func (n *fileNode) truncateLocked(size int64) error {
	if n.up != nil && size != n.sp.size {
		n.breakStream()
	}
	if err := n.sp.f.Truncate(size); err != nil {
		return err
	}
	n.sp.size, n.sp.dirty, n.sp.mtime = size, true, time.Now()
	n.sp.gen++
	return nil
}

// upload stores the spool as the file's content and commits it. Called
// with n.mu held.
func (n *fileNode) uploadLocked(ctx context.Context) error {
	if n.sp == nil || !n.sp.dirty || n.unlinked {
		return nil
	}
	if streamed, err := n.finishStream(); streamed {
		if err != nil {
			n.fsys.log.Warn("upload failed", "file", n.path(), "err", err)
		}
		return err
	}
	if n.sp == nil {
		return nil
	}
	p := n.path()
	r := io.NewSectionReader(n.sp.f, 0, n.sp.size)
	if _, err := n.fsys.st.PutMeta(ctx, p, r, n.meta()); err != nil {
		n.fsys.log.Warn("upload failed", "file", p, "err", err)
		return err
	}
	n.sp.dirty = false
	return nil
}

func (n *fileNode) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	h := &handle{node: n}
	if flags&syscall.O_ACCMODE == syscall.O_RDONLY {
		n.mu.Lock()
		defer n.mu.Unlock()
		if n.sp == nil {
			e, ok := n.fsys.st.Lookup(n.path())
			if !ok || e.Dir {
				return nil, 0, syscall.ENOENT
			}
			h.entry = e
			h.offsets = offsets(e)
			h.release = n.fsys.st.Hold(e.Segments)
		}
		return h, 0, 0
	}
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.openSpool(ctx, n.path(), flags&syscall.O_TRUNC != 0); err != nil {
		return nil, 0, errno(err)
	}
	n.sp.refs++
	h.write = true
	return h, 0, 0
}

func (n *fileNode) Setattr(ctx context.Context, fh fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	n.mu.Lock()
	defer n.mu.Unlock()
	if size, ok := in.GetSize(); ok {
		temp := n.sp == nil
		if err := n.openSpool(ctx, n.path(), size == 0); err != nil {
			return errno(err)
		}
		err := n.truncateLocked(int64(size))
		if err == nil && temp { // no handle will flush it: store it now
			err = n.uploadLocked(ctx)
		}
		if temp {
			n.closeSpoolLocked()
		}
		if err != nil {
			return errno(err)
		}
	}
	a := setAttr(in)
	if a.Mode != nil || a.UID != nil || a.GID != nil || a.MTime != nil || a.ATime != nil {
		if n.sp != nil { // the upload at close carries them
			e := catalog.Entry{Mode: n.mode, UID: n.uid, GID: n.gid, MTime: n.sp.mtime.UnixNano()}
			e.Apply(a, time.Now())
			n.mode, n.uid, n.gid = e.Mode, e.UID, e.GID
			n.sp.mtime, n.sp.ctime = time.Unix(0, e.MTime), time.Unix(0, e.CTime)
			n.breakStream() // it stores the attributes it started with
			n.sp.dirty = true
			n.sp.gen++
		}
		p := n.path()
		if _, ok := n.fsys.st.Lookup(p); ok && !n.unlinked {
			if _, err := n.fsys.st.SetAttr(ctx, p, a); err != nil {
				return errno(err)
			}
		}
	}
	if !n.attrLocked(&out.Attr) {
		return syscall.ENOENT
	}
	return 0
}

// meta is what an upload stores with the content. Called with n.mu held.
func (n *fileNode) meta() catalog.Meta {
	return catalog.Meta{Mode: n.mode, MTime: n.sp.mtime, UID: n.uid, GID: n.gid}
}

func (n *fileNode) closeSpoolLocked() {
	n.breakStream()
	if n.sp != nil {
		n.sp.f.Close()
		n.sp = nil
		n.fsys.spooled(n, false)
	}
}

// offsets returns the start of every segment of e, and the end.
func offsets(e catalog.Entry) []int64 {
	off := make([]int64, len(e.Segments)+1)
	for i, s := range e.Segments {
		off[i+1] = off[i] + int64(s.PlainLen)
	}
	return off
}

// handle is an open file. A read-only handle of a file not being written
// reads the entry it opened (segments are immutable); a writable one, or
// any handle while a spool exists, goes through the spool.
type handle struct {
	node  *fileNode
	write bool

	mu      sync.Mutex    // guards entry, offsets and release, set once
	entry   catalog.Entry // the file as opened, when read from the store
	offsets []int64
	// release ends the hold on entry's segments: they outlive an unlink
	// or a rename over the file until this handle closes.
	release func()
	next    int64 // where the last read ended: tells sequential from random
}

var (
	_ fs.FileReader   = (*handle)(nil)
	_ fs.FileWriter   = (*handle)(nil)
	_ fs.FileFlusher  = (*handle)(nil)
	_ fs.FileFsyncer  = (*handle)(nil)
	_ fs.FileReleaser = (*handle)(nil)
)

func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	n := h.node
	n.mu.Lock()
	if n.sp != nil {
		defer n.mu.Unlock()
		k, err := n.sp.f.ReadAt(dest, off)
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, errno(err)
		}
		return fuse.ReadResultData(dest[:k]), 0
	}
	n.mu.Unlock()
	h.mu.Lock()
	if h.offsets == nil { // opened while a spool existed, since uploaded and closed
		e, ok := n.fsys.st.Lookup(n.path())
		if !ok {
			h.mu.Unlock()
			return nil, syscall.ENOENT
		}
		h.entry, h.offsets = e, offsets(e)
		h.release = n.fsys.st.Hold(e.Segments)
	}
	h.mu.Unlock()
	k, err := h.readSegments(ctx, dest, off)
	if err != nil {
		n.fsys.log.Warn("read failed", "file", n.path(), "offset", off, "err", err)
		return nil, errno(err)
	}
	return fuse.ReadResultData(dest[:k]), 0
}

// readSegments copies from the segments covering [off, off+len(dest)).
// A sequential or large read decodes whole segments and starts fetching the
// one after the last; a small random read fetches only the frames it
// needs, unless the whole segment is cached already.
func (h *handle) readSegments(ctx context.Context, dest []byte, off int64) (int, error) {
	f := h.node.fsys
	h.mu.Lock()
	// A read from the start is taken as the start of a sequential read.
	seq := len(dest) >= bigRead || off == 0 || (h.next > 0 && off >= h.next-seqWindow && off <= h.next+seqWindow)
	h.next = off + int64(len(dest))
	h.mu.Unlock()
	total := 0
	for total < len(dest) && off < h.entry.Size {
		i := segmentAt(h.offsets, off)
		ref := h.entry.Segments[i]
		in := off - h.offsets[i]
		want := dest[total:min(len(dest), total+int(h.offsets[i+1]-off))]
		data, cached := f.cache.peek(ref.ID)
		if !cached && !seq {
			c, err := f.readFrames(ctx, ref, in, want)
			if err == nil {
				total += c
				off += int64(c)
				continue
			}
			if !partialFailed(ctx, err) {
				return total, err
			}
			f.log.Debug("frame read failed: reading the whole segment", "segment", ref.ID.String(), "err", err)
		}
		if !cached {
			var err error
			if data, err = f.cache.get(ctx, ref.ID, f.loader(ref)); err != nil {
				return total, err
			}
		}
		if in >= int64(len(data)) {
			return total, fmt.Errorf("segment %s holds %d bytes, the catalog says %d", ref.ID, len(data), ref.PlainLen)
		}
		c := copy(dest[total:], data[in:])
		total += c
		off += int64(c)
		if seq && i+1 < len(h.entry.Segments) {
			next := h.entry.Segments[i+1]
			f.cache.prefetch(next.ID, f.loader(next))
		}
	}
	return total, nil
}

// segmentAt returns the index of the segment holding byte off.
func segmentAt(offsets []int64, off int64) int {
	lo, hi := 0, len(offsets)-2
	for lo < hi {
		mid := (lo + hi + 1) / 2
		if offsets[mid] <= off {
			lo = mid
		} else {
			hi = mid - 1
		}
	}
	return lo
}

func (h *handle) Write(_ context.Context, data []byte, off int64) (uint32, syscall.Errno) {
	if !h.write {
		return 0, syscall.EBADF
	}
	n := h.node
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.sp == nil {
		return 0, syscall.EBADF
	}
	switch {
	case n.up != nil && off != n.sp.size:
		n.breakStream() // not a straight append: upload whole at flush
	case n.up == nil && off == 0 && n.sp.size == 0 && n.sp.gen == 0 && !n.unlinked:
		n.startStream(n.path())
	}
	k, err := n.sp.f.WriteAt(data, off)
	if k > 0 {
		n.sp.dirty, n.sp.mtime = true, time.Now()
		n.sp.size = max(n.sp.size, off+int64(k))
		n.sp.gen++
		if n.up != nil {
			n.up.cond.Broadcast()
		}
	}
	if err != nil {
		return uint32(k), errno(err)
	}
	return uint32(k), 0
}

// Flush runs on every close of a descriptor: upload what changed.
func (h *handle) Flush(ctx context.Context) syscall.Errno {
	if !h.write {
		return 0
	}
	h.node.mu.Lock()
	defer h.node.mu.Unlock()
	return errno(h.node.uploadLocked(ctx))
}

// Fsync returns once the content is stored and the catalog root that names
// it is committed.
func (h *handle) Fsync(ctx context.Context, _ uint32) syscall.Errno {
	return h.Flush(ctx)
}

// Release is the last close: a failed upload is retried once more, then
// the spool is dropped (the error went to close or fsync already).
func (h *handle) Release(ctx context.Context) syscall.Errno {
	h.mu.Lock()
	if h.release != nil {
		h.release()
		h.release = nil
	}
	h.mu.Unlock()
	if !h.write {
		return 0
	}
	n := h.node
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.sp == nil {
		return 0
	}
	n.sp.refs--
	if n.sp.refs > 0 {
		return 0
	}
	err := n.uploadLocked(ctx)
	if err != nil {
		n.fsys.log.Error("file dropped: upload failed at release", "file", n.path(), "err", err)
	}
	n.closeSpoolLocked()
	return errno(err)
}
