package fusefs

import (
	"context"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/zerogrid/zerogrid/internal/storage/catalog"
)

// dirNode is a directory: the root, an explicit directory entry or an
// implicit one (a prefix of file names).
type dirNode struct {
	fs.Inode
	fsys *FS
}

var (
	_ fs.NodeLookuper  = (*dirNode)(nil)
	_ fs.NodeReaddirer = (*dirNode)(nil)
	_ fs.NodeGetattrer = (*dirNode)(nil)
	_ fs.NodeMkdirer   = (*dirNode)(nil)
	_ fs.NodeRmdirer   = (*dirNode)(nil)
	_ fs.NodeUnlinker  = (*dirNode)(nil)
	_ fs.NodeRenamer   = (*dirNode)(nil)
	_ fs.NodeCreater   = (*dirNode)(nil)
	_ fs.NodeStatfser  = (*dirNode)(nil)
)

func (d *dirNode) path() string { return d.Path(nil) }

func (d *dirNode) Getattr(_ context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	p := d.path()
	if e, ok := d.fsys.st.Lookup(p); ok && e.Dir {
		fillEntry(&out.Attr, e)
	} else {
		fillEntry(&out.Attr, catalog.Entry{Dir: true, Mode: 0o755})
	}
	return 0
}

func (d *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	p := join(d.path(), name)
	ch := d.GetChild(name)
	if ch != nil {
		if fn, ok := ch.Operations().(*fileNode); ok && fn.pending() {
			fn.attr(&out.Attr)
			return ch, 0
		}
	}
	st := d.fsys.st
	if e, ok := st.Lookup(p); ok && !e.Dir {
		fillEntry(&out.Attr, e)
		if ch != nil && !ch.IsDir() {
			return ch, 0
		}
		return d.NewInode(ctx, &fileNode{fsys: d.fsys}, fs.StableAttr{Mode: syscall.S_IFREG}), 0
	}
	if st.IsDir(p) {
		e, _ := st.Lookup(p)
		e.Dir = true
		fillEntry(&out.Attr, e)
		if ch != nil && ch.IsDir() {
			return ch, 0
		}
		return d.NewInode(ctx, &dirNode{fsys: d.fsys}, fs.StableAttr{Mode: syscall.S_IFDIR}), 0
	}
	return nil, syscall.ENOENT
}

func (d *dirNode) Readdir(context.Context) (fs.DirStream, syscall.Errno) {
	var list []fuse.DirEntry
	seen := map[string]bool{}
	for _, e := range d.fsys.st.Children(d.path()) {
		name := baseName(e.Name)
		mode := uint32(syscall.S_IFREG)
		if e.Dir {
			mode = syscall.S_IFDIR
		}
		seen[name] = true
		list = append(list, fuse.DirEntry{Name: name, Mode: mode})
	}
	for name, ch := range d.Children() { // files created here, not uploaded yet
		if fn, ok := ch.Operations().(*fileNode); ok && !seen[name] && fn.pending() {
			list = append(list, fuse.DirEntry{Name: name, Mode: syscall.S_IFREG})
		}
	}
	return fs.NewListDirStream(list), 0
}

func baseName(p string) string {
	for i := len(p) - 1; i >= 0; i-- {
		if p[i] == '/' {
			return p[i+1:]
		}
	}
	return p
}

func (d *dirNode) Mkdir(ctx context.Context, name string, mode uint32, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	p := join(d.path(), name)
	if err := d.fsys.st.Mkdir(ctx, p, mode, time.Now()); err != nil {
		return nil, errno(err)
	}
	fillEntry(&out.Attr, catalog.Entry{Name: p, Dir: true, Mode: mode})
	return d.NewInode(ctx, &dirNode{fsys: d.fsys}, fs.StableAttr{Mode: syscall.S_IFDIR}), 0
}

func (d *dirNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	return errno(d.fsys.st.Rmdir(ctx, join(d.path(), name)))
}

func (d *dirNode) Unlink(ctx context.Context, name string) syscall.Errno {
	p := join(d.path(), name)
	var fn *fileNode
	if ch := d.GetChild(name); ch != nil {
		fn, _ = ch.Operations().(*fileNode)
	}
	if fn != nil {
		fn.unlink()
		if _, ok := d.fsys.st.Lookup(p); !ok {
			return 0 // created here and never uploaded
		}
	}
	return errno(d.fsys.st.Remove(ctx, p))
}

func (d *dirNode) Rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	var victim *fileNode // the file renamed over, if the mount knows it
	if ch := newParent.EmbeddedInode().GetChild(newName); ch != nil && ch != d.GetChild(name) {
		victim, _ = ch.Operations().(*fileNode)
	}
	en := d.rename(ctx, name, newParent, newName, flags)
	if en == 0 && victim != nil {
		victim.unlink() // its open handles keep the old content; never upload it
	}
	return en
}

func (d *dirNode) rename(ctx context.Context, name string, newParent fs.InodeEmbedder, newName string, flags uint32) syscall.Errno {
	if flags&fs.RENAME_EXCHANGE != 0 {
		return syscall.ENOTSUP
	}
	old := join(d.path(), name)
	nw := join(newParent.EmbeddedInode().Path(nil), newName)
	st := d.fsys.st
	if flags&unix.RENAME_NOREPLACE != 0 {
		if _, ok := st.Lookup(nw); ok || st.IsDir(nw) {
			return syscall.EEXIST
		}
	}
	if ch := d.GetChild(name); ch != nil {
		if fn, ok := ch.Operations().(*fileNode); ok {
			fn.mu.Lock()
			fn.breakStream() // it would store under the old name
			fn.mu.Unlock()
		}
		if fn, ok := ch.Operations().(*fileNode); ok && fn.pending() {
			if _, inStore := st.Lookup(old); !inStore {
				return 0 // uploaded under its new name when flushed
			}
		}
	}
	return errno(st.Rename(ctx, old, nw))
}

func (d *dirNode) Create(ctx context.Context, name string, flags uint32, mode uint32, out *fuse.EntryOut) (*fs.Inode, fs.FileHandle, uint32, syscall.Errno) {
	p := join(d.path(), name)
	if err := catalog.ValidName(p); err != nil {
		return nil, nil, 0, errno(err)
	}
	if d.fsys.st.IsDir(p) {
		return nil, nil, 0, syscall.EISDIR
	}
	fn := &fileNode{fsys: d.fsys, mode: mode & 0o7777}
	if err := fn.openSpool(ctx, p, true); err != nil {
		return nil, nil, 0, errno(err)
	}
	fn.sp.dirty = true // an empty new file is still a file
	fn.attr(&out.Attr)
	ch := d.NewInode(ctx, fn, fs.StableAttr{Mode: syscall.S_IFREG})
	return ch, &handle{node: fn, write: true}, 0, 0
}

func (d *dirNode) Statfs(_ context.Context, out *fuse.StatfsOut) syscall.Errno {
	// The backends report no capacity: a nominal 1 PiB, less what the
	// catalog holds; a full backend shows up as ENOSPC on write.
	const bsize = 1 << 20
	var used uint64
	entries := d.fsys.st.List("")
	for _, e := range entries {
		used += uint64(e.Size+bsize-1) / bsize
	}
	out.Bsize, out.Frsize = bsize, bsize
	out.Blocks = 1 << 30
	out.Bfree = out.Blocks - min(used, out.Blocks)
	out.Bavail = out.Bfree
	out.Files = uint64(len(entries))
	out.Ffree = 1 << 30
	out.NameLen = 255
	return 0
}
