package storage

import (
	"crypto/hkdf"
	"crypto/sha256"
	"fmt"

	"github.com/zerogrid/zerogrid/internal/storage/shamir"
)

// Key binding (shard format version 2, docs/formats/shard.md "Key
// binding"). The Shamir shares in the shard headers carry a random 32-byte
// segment secret S, not the AEAD key. The AEAD key is
//
//	O_seg = HKDF-SHA256(ikm = OwnerKey, salt = "", info = ctxOwnerSegment || 0x00 || segment id)
//	K     = HKDF-SHA256(ikm = S, salt = O_seg, info = ctxSegmentKey || 0x00 || segment id)
//
// so k shards (or all n) give S but not K: K also needs the owner key,
// which only the mnemonic yields. Repair interpolates shares of S and never
// needs either.

// HKDF info labels of key binding. Changing one makes every version 2
// segment unreadable.
const (
	ownerKeyInfo    = "zerogrid/storage/segment-owner-key/v2"
	ctxOwnerSegment = "zerogrid storage segment owner key v2"
	ctxSegmentKey   = "zerogrid storage segment key v2"
)

// OwnerKey is the owner's half of every segment key, derived from the
// storage secret of the owner's mnemonic. It lives only in memory and
// never prints.
type OwnerKey struct{ k [keySize]byte }

// NewOwnerKey derives the owner key from the 32-byte storage secret
// (identity.Root.StorageSecret) with HKDF-SHA256 and its own label.
func NewOwnerKey(storageSecret []byte) (*OwnerKey, error) {
	if len(storageSecret) < keySize {
		return nil, fmt.Errorf("storage: storage secret of %d bytes, want %d", len(storageSecret), keySize)
	}
	b, err := hkdf.Key(sha256.New, storageSecret, nil, ownerKeyInfo, keySize)
	if err != nil {
		return nil, fmt.Errorf("storage: derive owner key: %w", err)
	}
	var o OwnerKey
	copy(o.k[:], b)
	clear(b)
	return &o, nil
}

// String never prints the key.
func (o *OwnerKey) String() string { return "storage.OwnerKey(redacted)" }

// GoString is String: %#v must not print the key either.
func (o *OwnerKey) GoString() string { return o.String() }

// Wipe zeroes the key; the OwnerKey is unusable afterwards.
func (o *OwnerKey) Wipe() { clear(o.k[:]) }

// segmentKey returns the AEAD key of a version 2 segment from its secret.
func (o *OwnerKey) segmentKey(secret []byte, id SegmentID) ([]byte, error) {
	seg, err := hkdf.Key(sha256.New, o.k[:], nil, labelled(ctxOwnerSegment, id), keySize)
	if err != nil {
		return nil, err
	}
	defer clear(seg)
	return hkdf.Key(sha256.New, secret, seg, labelled(ctxSegmentKey, id), keySize)
}

func labelled(ctx string, id SegmentID) string {
	return ctx + "\x00" + string(id[:])
}

// aeadKey returns the AEAD key of the segment whose header is h from the
// segment secret (the Shamir secret): the secret itself in version 1, the
// owner-bound key in version 2.
func aeadKey(h *ShardHeader, secret []byte, owner *OwnerKey) ([]byte, error) {
	switch h.Version {
	case formatV1:
		return secret, nil
	case FormatVersion:
		if owner == nil {
			return nil, fmt.Errorf("%w: segment %s", ErrOwnerKey, h.Segment)
		}
		key, err := owner.segmentKey(secret, h.Segment)
		clear(secret)
		return key, err
	}
	return nil, fmt.Errorf("%w: version %d", ErrShardVersion, h.Version)
}

// segmentKey combines k shares of the segment secret and derives the
// segment's AEAD key. The caller clears the result.
func segmentKey(h *ShardHeader, shares []shamir.Share, owner *OwnerKey) ([]byte, error) {
	secret, err := shamir.Combine(shares)
	if err != nil {
		return nil, err
	}
	return aeadKey(h, secret, owner)
}
