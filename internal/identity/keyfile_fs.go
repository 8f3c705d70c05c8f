package identity

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"

	"github.com/zerogrid/zerogrid/internal/atomicfile"
)

// WriteKeyFile encrypts kf with passphrase (Argon2id, default cost) and
// writes it to path with mode 0600. It never replaces an existing file: the
// file is written to a temporary file in the same directory, synced, and
// linked into place only if path does not exist yet, so a crash leaves
// either no file or a complete one.
func WriteKeyFile(path string, kf *KeyFile, passphrase []byte) error {
	return writeKeyFile(path, kf, passphrase, writeOptions{cost: defaultKDFCost(), cipher: cipherXChaCha, rand: rand.Reader})
}

func writeKeyFile(path string, kf *KeyFile, passphrase []byte, opt writeOptions) error {
	// Check before the (slow) KDF; installNew checks again atomically.
	if _, err := os.Lstat(path); err == nil {
		return existsError(path)
	} else if !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("key file %s: %w", path, err)
	}
	data, err := encryptKeyFile(kf, passphrase, opt)
	if err != nil {
		return fmt.Errorf("key file %s: %w", path, err)
	}
	return installNew(path, data)
}

func existsError(path string) error {
	return fmt.Errorf("%w: %s; remove it first or choose another path", ErrKeyFileExists, path)
}

// installNew writes data to a synced temporary file and links it to path
// without replacing anything there (atomicfile.WriteNew).
func installNew(path string, data []byte) error {
	err := atomicfile.WriteNew(path, data, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return existsError(path)
	}
	if err != nil {
		return fmt.Errorf("write key file %s: %w", path, err)
	}
	return nil
}

// ReadKeyFile reads and decrypts the key file at path. It refuses a file
// that group or others can access (ErrKeyFileMode), and a wrong passphrase
// gives ErrWrongPassphrase.
func ReadKeyFile(path string, passphrase []byte) (*KeyFile, error) {
	data, err := readKeyFileBytes(path)
	if err != nil {
		return nil, err
	}
	kf, err := decryptKeyFile(data, passphrase)
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	return kf, nil
}

// ReadKeyFilePublic returns the kind and public key a key file's header
// names, without the passphrase. The header is authenticated only when the
// file is decrypted: use it for public keys the caller publishes itself
// (release metadata a person then checks), never to decide whom to trust.
func ReadKeyFilePublic(path string) (KeyKind, PublicKey, error) {
	data, err := readKeyFileBytes(path)
	if err != nil {
		return "", PublicKey{}, err
	}
	f, err := parseKeyFile(data)
	if err != nil {
		return "", PublicKey{}, fmt.Errorf("key file %s: %w", path, err)
	}
	pub, err := f.public()
	if err != nil {
		return "", PublicKey{}, fmt.Errorf("key file %s: %w", path, err)
	}
	return f.Kind, pub, nil
}

func readKeyFileBytes(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open key file: %w", err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("key file %s: %w", path, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrKeyFileFormat, path)
	}
	if err := checkKeyFileMode(path, fi); err != nil {
		return nil, err
	}
	data, err := io.ReadAll(io.LimitReader(f, maxKeyFileSize+1))
	if err != nil {
		return nil, fmt.Errorf("read key file %s: %w", path, err)
	}
	return data, nil
}
