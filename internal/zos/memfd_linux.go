package zos

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// sealedMemfd puts an executable in an anonymous memory file and seals it,
// so that its bytes, verified before, cannot change after: the node agent
// runs from memory, never from a disk. The caller executes it through
// /proc/self/fd/N and closes the file when done.
func sealedMemfd(name string, data []byte) (*os.File, error) {
	fd, err := unix.MemfdCreate(name, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), name)
	if _, err := f.Write(data); err != nil {
		f.Close()
		return nil, fmt.Errorf("write memfd: %w", err)
	}
	const seals = unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_SEAL
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal memfd: %w", err)
	}
	return f, nil
}

// memfdPath is the path that executes f.
func memfdPath(f *os.File) string { return fmt.Sprintf("/proc/self/fd/%d", f.Fd()) }
