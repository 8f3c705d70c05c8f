package fusefs

import (
	"context"
	"syscall"

	"github.com/hanwen/go-fuse/v2/fs"
)

// noXattr answers setxattr and removexattr with EOPNOTSUPP, the answer of
// a file system without extended attributes (go-fuse's default, ENODATA,
// makes `cp -p` fail while preserving ACLs). getxattr is ENODATA and
// listxattr empty: go-fuse's defaults.
type noXattr struct{}

func (noXattr) Setxattr(context.Context, string, []byte, uint32) syscall.Errno {
	return syscall.EOPNOTSUPP
}

func (noXattr) Removexattr(context.Context, string) syscall.Errno { return syscall.EOPNOTSUPP }

var (
	_ fs.NodeSetxattrer    = (*fileNode)(nil)
	_ fs.NodeRemovexattrer = (*dirNode)(nil)
	_ fs.NodeSetxattrer    = (*linkNode)(nil)
)
