//go:build unix

package zdb

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
)

// lockDir takes an exclusive flock on DIR/.lock, so two servers never
// append to the same files. The kernel drops the lock when the process
// dies: there is no stale lock to clean up after a crash.
func lockDir(dir string) (func() error, error) {
	path := filepath.Join(dir, ".lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		return nil, fmt.Errorf("%w: %s: %w (is another zgridd zdb running with this --dir?)", ErrDirInUse, path, err)
	}
	return f.Close, nil
}
