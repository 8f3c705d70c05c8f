package identity

import (
	"crypto/ed25519"
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"
	"io"

	"github.com/cosmos/go-bip39"
)

// HKDF-SHA256 info labels of the derivation paths. Changing any of them
// changes every key derived from every mnemonic; testdata/derivation.json
// pins them.
const (
	infoRootKey    = "zerogrid/root-key/v1"
	infoSealKey    = "zerogrid/seal-key/v1"
	infoStorageKey = "zerogrid/storage-key/v1"
)

const storageSecretLen = 32

// Root is everything a person's mnemonic derives:
//
//	seed    = BIP-39 seed of the mnemonic, empty passphrase (64 bytes)
//	root    = ed25519 key from HKDF-SHA256(seed, salt="", info="zerogrid/root-key/v1", 32)
//	seal    = HPKE DeriveKeyPair(HKDF-SHA256(seed, "", "zerogrid/seal-key/v1", 32))
//	storage = HKDF-SHA256(seed, "", "zerogrid/storage-key/v1", 32)
//
// The root's sealing key comes from the BIP-39 seed, not from the root
// signing key: Root.SealKey() differs from Root.Key().SealKey(). Use
// Root.SealKey (or KeyFile.SealKey, which picks the right one).
//
// Root never prints its secrets.
type Root struct {
	key     PrivateKey
	seal    SealPrivateKey
	storage []byte
}

// RootFromMnemonic validates m (see ValidateMnemonic) and derives the root
// signing key, sealing key and storage secret from it.
func RootFromMnemonic(m string) (Root, error) {
	norm, err := normalizeMnemonic(m)
	if err != nil {
		return Root{}, err
	}
	seed := bip39.NewSeed(norm, "")
	defer clear(seed)

	edSeed, err := deriveSecret(seed, infoRootKey, ed25519.SeedSize)
	if err != nil {
		return Root{}, err
	}
	defer clear(edSeed)
	key, err := NewPrivateKey(edSeed)
	if err != nil {
		return Root{}, err
	}
	ikm, err := deriveSecret(seed, infoSealKey, sealIKMLen)
	if err != nil {
		return Root{}, err
	}
	defer clear(ikm)
	seal, err := DeriveSealKey(ikm)
	if err != nil {
		return Root{}, err
	}
	storage, err := deriveSecret(seed, infoStorageKey, storageSecretLen)
	if err != nil {
		return Root{}, err
	}
	return Root{key: key, seal: seal, storage: storage}, nil
}

// deriveSecret is HKDF-SHA256 with an empty salt.
func deriveSecret(secret []byte, info string, n int) ([]byte, error) {
	out, err := hkdf.Key(sha256.New, secret, nil, info, n)
	if err != nil {
		return nil, fmt.Errorf("identity: derive %s: %w", info, err)
	}
	return out, nil
}

// Key is the root signing key.
func (r Root) Key() PrivateKey { return r.key }

// Public is the root's public key, the twin's identity on the ledger.
func (r Root) Public() PublicKey { return r.key.Public() }

// SealKey is the root's sealing key (derived from the BIP-39 seed).
func (r Root) SealKey() SealPrivateKey { return r.seal }

// StorageSecret is the 32-byte master secret of the person's stored data.
// It returns a copy; the caller may clear it.
func (r Root) StorageSecret() []byte { return append([]byte(nil), r.storage...) }

// String shows only the public key.
func (r Root) String() string { return "Root(" + r.Public().String() + ")" }

// GoString shows only the public key.
func (r Root) GoString() string { return r.String() }

// Format makes every fmt verb print only the public key.
func (r Root) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, r.String()) }
