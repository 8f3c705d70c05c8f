package catalog

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"io"
	"os"
	"syscall"
)

// A writer id is 16 bytes: an 8-byte tag of this machine, user and PID
// namespace (HMAC under the store's MAC key, so it says nothing to a
// backend), the writer's PID (4 bytes), and 4 random bytes. Other writers
// treat it as opaque; a writer with the same tag is a process of the same
// user on the same machine, and when its PID is no longer running its lock
// is stale: a restarted mount takes it over at once instead of waiting for
// the lease to run out.
const lockTagTag = "zerogrid storage lock machine tag v1\x00"

// localTag is the machine tag of this process.
func localTag(k *keys) [8]byte {
	m := hmac.New(sha256.New, k.mac[:])
	m.Write([]byte(lockTagTag))
	for _, f := range []string{"/etc/machine-id", "/proc/sys/kernel/random/boot_id"} {
		b, _ := os.ReadFile(f)
		m.Write(b)
		m.Write([]byte{0})
	}
	ns, _ := os.Readlink("/proc/self/ns/pid")
	m.Write([]byte(ns))
	m.Write([]byte{0})
	m.Write(binary.BigEndian.AppendUint32(nil, uint32(os.Getuid())))
	var tag [8]byte
	copy(tag[:], m.Sum(nil))
	return tag
}

// newWriterID makes this process's writer id.
func newWriterID(k *keys, rand io.Reader) ([16]byte, error) {
	var id [16]byte
	tag := localTag(k)
	copy(id[:8], tag[:])
	binary.BigEndian.PutUint32(id[8:12], uint32(os.Getpid()))
	_, err := io.ReadFull(rand, id[12:])
	return id, err
}

// staleLocal reports whether writer is a process of this machine, user and
// PID namespace that no longer runs (or another one with the same PID
// number that does not hold a lock id of ours: the PID was reused, which
// also means the writer is gone).
func (s *Store) staleLocal(writer [16]byte) bool {
	tag := localTag(s.keys)
	if !hmac.Equal(writer[:8], tag[:]) || writer == s.lk.writer {
		return false
	}
	pid := int(binary.BigEndian.Uint32(writer[8:12]))
	if pid == os.Getpid() {
		return false // another Store of this very process: it is alive
	}
	err := syscall.Kill(pid, 0)
	return errors.Is(err, syscall.ESRCH)
}
