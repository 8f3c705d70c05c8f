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
	noXattr
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
	_ fs.NodeSetattrer = (*dirNode)(nil)
	_ fs.NodeSymlinker = (*dirNode)(nil)
)

func (d *dirNode) path() string { return d.Path(nil) }

// entry returns the directory's attributes: the root's from memory, an
// explicit directory's from the catalog, an implicit one's made up.
func (d *dirNode) entry() catalog.Entry {
	p := d.path()
	if p == "" {
		return d.fsys.rootEntry()
	}
	if e, ok := d.fsys.st.Lookup(p); ok && e.Dir {
		return e
	}
	return catalog.Entry{Name: p, Dir: true, Mode: 0o755}
}

func (d *dirNode) Getattr(_ context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	d.fsys.fill(&out.Attr, d.entry())
	return 0
}

// Setattr changes mode, owner and times (chmod, chown, utimensat); the
// kernel has checked the caller may (default_permissions).
func (d *dirNode) Setattr(ctx context.Context, _ fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	if _, ok := in.GetSize(); ok {
		return syscall.EISDIR
	}
	a := setAttr(in)
	p := d.path()
	if p == "" {
		d.fsys.setRoot(a)
		d.fsys.fill(&out.Attr, d.fsys.rootEntry())
		return 0
	}
	e, err := d.fsys.st.SetAttr(ctx, p, a)
	if err != nil {
		return errno(err)
	}
	d.fsys.fill(&out.Attr, e)
	return 0
}

// setAttr converts a SETATTR request, less its size, to a catalog change.
func setAttr(in *fuse.SetAttrIn) catalog.Attr {
	var a catalog.Attr
	if m, ok := in.GetMode(); ok {
		m &= 0o7777
		a.Mode = &m
	}
	if u, ok := in.GetUID(); ok {
		a.UID = &u
	}
	if g, ok := in.GetGID(); ok {
		a.GID = &g
	}
	if t, ok := in.GetMTime(); ok {
		a.MTime = &t
	}
	if t, ok := in.GetATime(); ok {
		a.ATime = &t
	}
	return a
}

func (d *dirNode) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	if len(name) > catalog.MaxComponentLen {
		return nil, syscall.ENAMETOOLONG
	}
	p := join(d.path(), name)
	ch := d.GetChild(name)
	if ch != nil {
		if fn, ok := ch.Operations().(*fileNode); ok && fn.pending() {
			fn.attr(&out.Attr)
			return ch, 0
		}
	}
	st := d.fsys.st
	if e, ok := st.Lookup(p); ok && e.IsLink() {
		d.fsys.fill(&out.Attr, e)
		if ch != nil {
			if _, ok := ch.Operations().(*linkNode); ok {
				return ch, 0
			}
		}
		return d.NewInode(ctx, &linkNode{fsys: d.fsys}, fs.StableAttr{Mode: syscall.S_IFLNK}), 0
	} else if ok && !e.Dir {
		d.fsys.fill(&out.Attr, e)
		if ch != nil {
			if _, ok := ch.Operations().(*fileNode); ok {
				return ch, 0
			}
		}
		return d.NewInode(ctx, &fileNode{fsys: d.fsys}, fs.StableAttr{Mode: syscall.S_IFREG}), 0
	}
	if st.IsDir(p) {
		e, ok := st.Lookup(p)
		if !ok {
			e = catalog.Entry{Name: p, Dir: true, Mode: 0o755}
		}
		d.fsys.fill(&out.Attr, e)
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
		switch {
		case e.Dir:
			mode = syscall.S_IFDIR
		case e.IsLink():
			mode = syscall.S_IFLNK
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
	uid, gid := caller(ctx)
	if err := d.fsys.st.MkdirMeta(ctx, p, catalog.Meta{Mode: mode, MTime: time.Now(), UID: uid, GID: gid}); err != nil {
		return nil, errno(err)
	}
	d.fsys.changed(d.path())
	e, ok := d.fsys.st.Lookup(p)
	if !ok {
		e = catalog.Entry{Name: p, Dir: true, Mode: mode & 0o7777, UID: uid, GID: gid}
	}
	d.fsys.fill(&out.Attr, e)
	return d.NewInode(ctx, &dirNode{fsys: d.fsys}, fs.StableAttr{Mode: syscall.S_IFDIR}), 0
}

func (d *dirNode) Rmdir(ctx context.Context, name string) syscall.Errno {
	if err := d.fsys.st.Rmdir(ctx, join(d.path(), name)); err != nil {
		return errno(err)
	}
	d.fsys.changed(d.path())
	return 0
}

// Symlink adds a symbolic link owned by the caller.
func (d *dirNode) Symlink(ctx context.Context, target, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	p := join(d.path(), name)
	uid, gid := caller(ctx)
	e, err := d.fsys.st.Symlink(ctx, p, target, uid, gid)
	if err != nil {
		return nil, errno(err)
	}
	d.fsys.changed(d.path())
	d.fsys.fill(&out.Attr, e)
	return d.NewInode(ctx, &linkNode{fsys: d.fsys}, fs.StableAttr{Mode: syscall.S_IFLNK}), 0
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
			d.fsys.changed(d.path())
			return 0 // created here and never uploaded
		}
	}
	if err := d.fsys.st.Remove(ctx, p); err != nil {
		return errno(err)
	}
	d.fsys.changed(d.path())
	return 0
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
	if en == 0 {
		d.fsys.changed(d.path())
		d.fsys.changed(newParent.EmbeddedInode().Path(nil))
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
	uid, gid := caller(ctx)
	fn := &fileNode{fsys: d.fsys, mode: mode & 0o7777, uid: uid, gid: gid}
	if err := fn.openSpool(ctx, p, true); err != nil {
		return nil, nil, 0, errno(err)
	}
	fn.sp.dirty = true // an empty new file is still a file
	fn.attr(&out.Attr)
	d.fsys.changed(d.path())
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
