package catalog

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
)

// HKDF-SHA256 info labels. Changing one changes every key of every store.
const (
	catalogKeyInfo = "zerogrid/storage/catalog-key/v1"
	rootMACKeyInfo = "zerogrid/storage/root-mac-key/v1"
)

// keys are the metadata keys of one store. They live only in memory.
type keys struct {
	cat [32]byte // AES-256-GCM key of catalogs and root records
	mac [32]byte // HMAC-SHA256 key of root records
}

// deriveKeys derives the metadata keys from the 32-byte storage secret
// (identity.Root.StorageSecret), with an empty salt and distinct labels.
func deriveKeys(secret []byte) (*keys, error) {
	if len(secret) < 32 {
		return nil, fmt.Errorf("catalog: storage secret of %d bytes, want 32", len(secret))
	}
	var k keys
	for _, d := range []struct {
		dst  *[32]byte
		info string
	}{{&k.cat, catalogKeyInfo}, {&k.mac, rootMACKeyInfo}} {
		b, err := hkdf.Key(sha256.New, secret, nil, d.info, 32)
		if err != nil {
			return nil, fmt.Errorf("catalog: derive key: %w", err)
		}
		copy(d.dst[:], b)
		clear(b)
	}
	return &k, nil
}

func (k *keys) wipe() {
	clear(k.cat[:])
	clear(k.mac[:])
}
