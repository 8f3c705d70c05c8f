package release

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// ExecMemory replaces the running program with up's verified binary, held
// in a sealed memory file: nothing is executed from a disk, and nothing can
// change the bytes between their check and the exec. argv and env are
// passed on; the process id stays the same. It returns only on failure.
func ExecMemory(up *Update, argv, env []string) error {
	fd, err := unix.MemfdCreate("zgridd-"+up.Release.Version, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return fmt.Errorf("memfd: %w", err)
	}
	f := os.NewFile(uintptr(fd), "memfd")
	defer f.Close()
	if _, err := f.Write(up.Binary); err != nil {
		return fmt.Errorf("memfd: %w", err)
	}
	seals := unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE | unix.F_SEAL_SEAL
	if _, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals); err != nil {
		return fmt.Errorf("seal memfd: %w", err)
	}
	// Check the sealed bytes once more: they are what runs.
	got := make([]byte, len(up.Binary))
	if _, err := f.ReadAt(got, 0); err != nil {
		return fmt.Errorf("read memfd: %w", err)
	}
	if sum := sha256.Sum256(got); !bytes.Equal(sum[:], up.Release.SHA256[:]) {
		return fmt.Errorf("the sealed copy of release %s does not hash to its signed SHA-256", up.Release.Version)
	}
	return unix.Exec("/proc/self/fd/"+strconv.Itoa(fd), argv, env)
}
