package volume

import (
	"context"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"github.com/zerogrid/zerogrid/internal/workload/idmap"
)

// shift gives every file below dir (dir included) to the host ids of ids:
// owner and group id i become ids.Host(i). Ids already in the range are
// left alone, so shifting again, after a crash midway, finishes the work.
// It returns how many files it changed.
func shift(ctx context.Context, dir string, ids idmap.Range) (int, error) {
	lo, hi := int(ids.Base), int(ids.Base)+idmap.Size
	in := func(id int) bool { return id >= lo && id < hi }
	n := 0
	err := filepath.WalkDir(dir, func(p string, _ fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		uid, gid := int(st.Uid), int(st.Gid)
		if in(uid) && in(gid) {
			return nil
		}
		if !in(uid) {
			uid = ids.Host(uid)
		}
		if !in(gid) {
			gid = ids.Host(gid)
		}
		if err := os.Lchown(p, uid, gid); err != nil {
			if notRoot(err) {
				return nil
			}
			return err
		}
		// chown clears set-id bits of files: give them back.
		if mode := fi.Mode(); mode&(fs.ModeSetuid|fs.ModeSetgid) != 0 && mode.Type() == 0 {
			if err := os.Chmod(p, mode); err != nil {
				return err
			}
		}
		n++
		return nil
	})
	return n, err
}
