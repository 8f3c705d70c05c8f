package s3gw

import (
	"crypto/hkdf"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"fmt"
)

// HKDF-SHA256 info labels of the S3 credentials. Changing one changes
// every user's keys.
const (
	accessKeyIDInfo = "zerogrid/storage/s3-access-key-id/v1"
	secretKeyInfo   = "zerogrid/storage/s3-secret-access-key/v1"
	accessKeyPrefix = "ZG"
)

// Credentials are one user's S3 access key pair. The secret never prints.
type Credentials struct {
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
}

// String shows the access key id only.
func (c Credentials) String() string { return "s3 credentials " + c.AccessKeyID + " (secret redacted)" }

// GoString is String: %#v must not print the secret either.
func (c Credentials) GoString() string { return c.String() }

// DeriveCredentials derives a user's S3 access key pair from the 32-byte
// storage secret of the mnemonic (identity.Root.StorageSecret): an access
// key id "ZG" + 24 base32 characters (not secret: it names the user) and a
// 40-character secret, each from HKDF-SHA256 with its own label. The same
// mnemonic always gives the same pair; another mnemonic, another pair.
func DeriveCredentials(storageSecret []byte) (Credentials, error) {
	if len(storageSecret) < 32 {
		return Credentials{}, fmt.Errorf("s3gw: storage secret of %d bytes, want 32", len(storageSecret))
	}
	id, err := hkdf.Key(sha256.New, storageSecret, nil, accessKeyIDInfo, 15)
	if err != nil {
		return Credentials{}, err
	}
	sk, err := hkdf.Key(sha256.New, storageSecret, nil, secretKeyInfo, 30)
	if err != nil {
		return Credentials{}, err
	}
	defer clear(sk)
	return Credentials{
		AccessKeyID:     accessKeyPrefix + base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(id),
		SecretAccessKey: base64.RawURLEncoding.EncodeToString(sk),
	}, nil
}
