package qsfs

import "golang.org/x/sys/unix"

// detach lazily unmounts what is mounted at dir, if anything.
func detach(dir string) { unix.Unmount(dir, unix.MNT_DETACH) }
