package fusefs

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
)

// linkNode is a symbolic link; its target is in the catalog entry.
type linkNode struct {
	fs.Inode
	noXattr
	fsys *FS
}

var (
	_ fs.NodeReadlinker = (*linkNode)(nil)
	_ fs.NodeGetattrer  = (*linkNode)(nil)
	_ fs.NodeSetattrer  = (*linkNode)(nil)
)

func (l *linkNode) Readlink(context.Context) ([]byte, syscall.Errno) {
	e, ok := l.fsys.st.Lookup(l.Path(nil))
	if !ok || !e.IsLink() {
		return nil, syscall.ENOENT
	}
	return []byte(e.Link), 0
}

func (l *linkNode) Getattr(_ context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	e, ok := l.fsys.st.Lookup(l.Path(nil))
	if !ok || !e.IsLink() {
		return syscall.ENOENT
	}
	l.fsys.fill(&out.Attr, e)
	return 0
}

// Setattr changes a link's owner and times (lchown, utimensat with
// AT_SYMLINK_NOFOLLOW); its mode is always 0777.
func (l *linkNode) Setattr(ctx context.Context, _ fs.FileHandle, in *fuse.SetAttrIn, out *fuse.AttrOut) syscall.Errno {
	a := setAttr(in)
	a.Mode = nil
	e, err := l.fsys.st.SetAttr(ctx, l.Path(nil), a)
	if err != nil {
		return errno(err)
	}
	l.fsys.fill(&out.Attr, e)
	return 0
}
