package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/zerogrid/zerogrid/internal/atomicfile"
	"github.com/zerogrid/zerogrid/internal/identity"
)

// KeyFile is the gateway's identity key in its directory: the hex ed25519
// seed, mode 0600. The gateway must start unattended, so the key is not
// passphrase-protected; the directory's permissions protect it, like the
// CA key beside it.
const KeyFile = "gateway.key"

// LoadOrCreateKey reads DIR/gateway.key, or creates it with a new random
// key when it does not exist. Backends pin the key's public half.
func LoadOrCreateKey(dir string) (identity.PrivateKey, error) {
	path := filepath.Join(dir, KeyFile)
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return identity.PrivateKey{}, err
		}
		key, err := identity.GenerateKey(rand.Reader)
		if err != nil {
			return identity.PrivateKey{}, err
		}
		if err := atomicfile.WriteNew(path, []byte(hex.EncodeToString(key.Seed())+"\n"), 0o600); err != nil {
			return identity.PrivateKey{}, fmt.Errorf("write gateway key %s: %w", path, err)
		}
		return key, nil
	}
	if err != nil {
		return identity.PrivateKey{}, fmt.Errorf("gateway key %s: %w", path, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return identity.PrivateKey{}, fmt.Errorf("gateway key %s has mode %v: others can read it; chmod 600 it", path, fi.Mode().Perm())
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return identity.PrivateKey{}, fmt.Errorf("gateway key %s: %w", path, err)
	}
	seed, err := hex.DecodeString(strings.TrimSpace(string(data)))
	if err != nil || len(seed) != 32 {
		return identity.PrivateKey{}, fmt.Errorf("gateway key %s is not a 64-digit hex seed; remove it to create a new key (backends must then pin the new one)", path)
	}
	return identity.NewPrivateKey(seed)
}
