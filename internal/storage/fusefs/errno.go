package fusefs

import (
	"context"
	"errors"
	"syscall"

	"github.com/zerogrid/zerogrid/internal/storage"
	"github.com/zerogrid/zerogrid/internal/storage/catalog"
)

// errno maps a store error to what the caller of the file system sees.
// Order matters: a write error wraps both ErrTooFewShards and the
// backends' ErrFull, and full is what the user can act on.
func errno(err error) syscall.Errno {
	var en syscall.Errno
	switch {
	case err == nil:
		return 0
	case errors.Is(err, storage.ErrFull):
		return syscall.ENOSPC
	case errors.Is(err, catalog.ErrNotFound):
		return syscall.ENOENT
	case errors.Is(err, catalog.ErrIsDir):
		return syscall.EISDIR
	case errors.Is(err, catalog.ErrNotDir):
		return syscall.ENOTDIR
	case errors.Is(err, catalog.ErrNotEmpty):
		return syscall.ENOTEMPTY
	case errors.Is(err, catalog.ErrNameTaken):
		return syscall.EEXIST
	case errors.Is(err, catalog.ErrNameTooLong):
		return syscall.ENAMETOOLONG
	case errors.Is(err, catalog.ErrName), errors.Is(err, catalog.ErrRenameInto):
		return syscall.EINVAL
	case errors.Is(err, catalog.ErrTooLarge):
		return syscall.EFBIG
	case errors.Is(err, storage.ErrTooFewShards), errors.Is(err, storage.ErrUnavailable),
		errors.Is(err, storage.ErrBadShard), errors.Is(err, storage.ErrDecrypt),
		errors.Is(err, catalog.ErrQuorum), errors.Is(err, catalog.ErrCorrupt):
		// Before the errno check below: a backend's own ENOENT or EIO
		// inside a shard fault is not the file's.
		return syscall.EIO
	case errors.Is(err, context.Canceled):
		return syscall.EINTR
	case errors.As(err, &en):
		return en
	default: // unavailable backends, too few shards, lost quorum, corruption
		return syscall.EIO
	}
}
