package storage

import "bytes"

// Internals that the external tests (package storage_test) reach into.

// OpenSealed decrypts a segment's sealed stream held in the data shards
// with the given key, as the decoder does.
func OpenSealed(key []byte, h *ShardHeader, dataShards [][]byte) ([]byte, error) {
	stream := make([]byte, h.StreamLen)
	if err := open(key, segmentAAD(h), dataShards, stream); err != nil {
		return nil, err
	}
	return stream, nil
}

// EncodeHeader writes h (with fresh block hashes over data) in front of data,
// as the encoder does, so tests can forge self-consistent shards.
func EncodeHeader(h *ShardHeader, data []byte) ([]byte, [32]byte) {
	hs := newHasher()
	h.Blocks = hs.blocks(data, nil)
	l := h.layout()
	buf := make([]byte, l.headerLen+len(data))
	sum := hs.encodeHeader(buf, h)
	copy(buf[l.headerLen:], data)
	return buf, sum
}

// HeaderLen returns the header length of a shard of a segment with these
// k and stream length.
func HeaderLen(k, streamLen int) int { return newLayout(k, streamLen).headerLen }

// EncodeHeaderOnly encodes h as it is, block hashes included.
func EncodeHeaderOnly(h *ShardHeader) ([]byte, [32]byte) {
	buf := make([]byte, h.layout().headerLen)
	sum := newHasher().encodeHeader(buf, h)
	return buf, sum
}

// LegacyV1 makes c write shard format version 1 (segment keys not bound to
// the owner), as stores written before key binding are.
func LegacyV1(c Config) Config { c.legacyV1 = true; return c }

// SegmentKey derives the AEAD key of the segment h from its Shamir secret
// (the secret itself in version 1).
func SegmentKey(secret []byte, owner *OwnerKey, h *ShardHeader) ([]byte, error) {
	return aeadKey(h, bytes.Clone(secret), owner)
}
