package identity

import (
	"fmt"
	"io"

	"golang.org/x/crypto/argon2"
)

// Argon2id parameters. The defaults follow RFC 9106's second recommended
// option scaled to 64 MiB. The bounds apply when reading and when writing:
// the upper ones keep a hostile file from exhausting memory or time, the
// lower ones (the OWASP floor: 19 MiB, 2 passes) keep anyone from writing
// a file that is cheaper to attack. There is no way to skip the KDF.
const (
	kdfArgon2id = "argon2id"

	defaultKDFTime    = 3
	defaultKDFMemory  = 64 * 1024 // KiB
	defaultKDFThreads = 2
	kdfSaltLen        = 16

	minKDFTime    = 2
	maxKDFTime    = 16
	minKDFMemory  = 19456   // KiB
	maxKDFMemory  = 1 << 20 // KiB = 1 GiB
	minKDFThreads = 1
	maxKDFThreads = 16
	minKDFSalt    = 16
	maxKDFSalt    = 64

	fileKeyLen = 32
)

// kdfParams is the "kdf" object of a key file header.
type kdfParams struct {
	Name      string `json:"name" cbor:"name"`
	Salt      []byte `json:"salt" cbor:"salt"`
	Time      uint32 `json:"time" cbor:"time"`
	MemoryKiB uint32 `json:"memory_kib" cbor:"memory_kib"`
	Threads   uint8  `json:"threads" cbor:"threads"`
}

// kdfCost is the cost part of kdfParams, chosen by the writer.
type kdfCost struct {
	Time, MemoryKiB uint32
	Threads         uint8
}

func defaultKDFCost() kdfCost {
	return kdfCost{Time: defaultKDFTime, MemoryKiB: defaultKDFMemory, Threads: defaultKDFThreads}
}

// newKDFParams draws a fresh salt from rand.
func newKDFParams(c kdfCost, rand io.Reader) (kdfParams, error) {
	salt := make([]byte, kdfSaltLen)
	if _, err := io.ReadFull(rand, salt); err != nil {
		return kdfParams{}, fmt.Errorf("identity: read randomness: %w", err)
	}
	p := kdfParams{Name: kdfArgon2id, Salt: salt, Time: c.Time, MemoryKiB: c.MemoryKiB, Threads: c.Threads}
	return p, p.check()
}

// check enforces the bounds above.
func (p kdfParams) check() error {
	switch {
	case p.Name != kdfArgon2id:
		return fmt.Errorf("%w: kdf %q, want %q", ErrKDFParams, p.Name, kdfArgon2id)
	case len(p.Salt) < minKDFSalt || len(p.Salt) > maxKDFSalt:
		return fmt.Errorf("%w: salt is %d bytes, want %d to %d", ErrKDFParams, len(p.Salt), minKDFSalt, maxKDFSalt)
	case p.Time < minKDFTime || p.Time > maxKDFTime:
		return fmt.Errorf("%w: time %d, want %d to %d", ErrKDFParams, p.Time, minKDFTime, maxKDFTime)
	case p.MemoryKiB < minKDFMemory || p.MemoryKiB > maxKDFMemory:
		return fmt.Errorf("%w: memory_kib %d, want %d to %d", ErrKDFParams, p.MemoryKiB, minKDFMemory, maxKDFMemory)
	case p.Threads < minKDFThreads || p.Threads > maxKDFThreads:
		return fmt.Errorf("%w: threads %d, want %d to %d", ErrKDFParams, p.Threads, minKDFThreads, maxKDFThreads)
	}
	return nil
}

// key runs Argon2id. The caller clears the result.
func (p kdfParams) key(passphrase []byte) ([]byte, error) {
	if err := p.check(); err != nil {
		return nil, err
	}
	return argon2.IDKey(passphrase, p.Salt, p.Time, p.MemoryKiB, p.Threads, fileKeyLen), nil
}
