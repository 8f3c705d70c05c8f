package grid

import (
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/zerogrid/zerogrid/internal/identity"
)

// keys are the grid's key files, all under one generated passphrase.
type keys struct {
	dir      string
	passFile string
	pass     []byte
	user     *identity.KeyFile
	farmer   *identity.KeyFile
	nodes    []*identity.KeyFile
	random   io.Reader
}

func (k *keys) userPath() string      { return filepath.Join(k.dir, "user.key") }
func (k *keys) farmerPath() string    { return filepath.Join(k.dir, "farmer.key") }
func (k *keys) nodePath(i int) string { return filepath.Join(k.dir, fmt.Sprintf("node%d.key", i)) }
func (k *keys) approval(i int) string {
	return filepath.Join(k.dir, fmt.Sprintf("node%d.approval.json", i))
}

// loadKeys opens the key files in dir, creating whatever is missing: the
// passphrase, a user and a farmer root key (each from a new mnemonic) and n
// node keys.
func loadKeys(dir string, n int, random io.Reader) (*keys, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	k := &keys{dir: dir, passFile: filepath.Join(dir, "passphrase"), random: random}
	var err error
	if k.pass, err = loadPassphrase(k.passFile, random); err != nil {
		return nil, err
	}
	newRoot := func() (*identity.KeyFile, error) {
		m, err := identity.NewMnemonic(random)
		if err != nil {
			return nil, err
		}
		return identity.NewRootKeyFile(m)
	}
	if k.user, err = k.open(k.userPath(), newRoot); err != nil {
		return nil, err
	}
	if k.farmer, err = k.open(k.farmerPath(), newRoot); err != nil {
		return nil, err
	}
	for i := 1; i <= n; i++ {
		kf, err := k.open(k.nodePath(i), func() (*identity.KeyFile, error) {
			key, err := identity.GenerateKey(random)
			if err != nil {
				return nil, err
			}
			return identity.NewKeyFile(identity.KindNode, key)
		})
		if err != nil {
			return nil, err
		}
		k.nodes = append(k.nodes, kf)
	}
	return k, nil
}

func (k *keys) open(path string, create func() (*identity.KeyFile, error)) (*identity.KeyFile, error) {
	kf, err := identity.ReadKeyFile(path, k.pass)
	if err == nil {
		return kf, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("key file %s: %w (delete DIR to start a new grid)", path, err)
	}
	if kf, err = create(); err != nil {
		return nil, err
	}
	if err := identity.WriteKeyFile(path, kf, k.pass); err != nil {
		return nil, fmt.Errorf("write key file %s: %w", path, err)
	}
	return kf, nil
}

// loadPassphrase reads path, or writes a new random passphrase there.
func loadPassphrase(path string, random io.Reader) ([]byte, error) {
	b, err := os.ReadFile(path)
	if err == nil {
		return trimNewline(b), nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	raw := make([]byte, 24)
	if _, err := io.ReadFull(random, raw); err != nil {
		return nil, err
	}
	pass := []byte(base64.RawURLEncoding.EncodeToString(raw))
	if err := os.WriteFile(path, append(pass, '\n'), 0o600); err != nil {
		return nil, err
	}
	return pass, nil
}
