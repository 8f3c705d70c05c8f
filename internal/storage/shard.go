package storage

import (
	"crypto/subtle"
	"encoding/binary"
	"fmt"

	"github.com/zeebo/blake3"
)

// Shard format version 2 (and 1, read only): a fixed-layout header, the
// header's hash, then the shard's data. docs/formats/shard.md is the specification; this file is its
// only implementation.

// Compression says how a segment's plaintext was compressed before
// encryption.
type Compression uint8

const (
	CompressNone Compression = 0 // stored as is (incompressible)
	CompressS2   Compression = 1 // one S2 block (github.com/klauspost/compress/s2)
)

const (
	shardMagic     = "ZGSH"
	cipherAESGCM   = 1  // AES-256-GCM in 64 KiB STREAM frames
	fixedHeaderLen = 67 // bytes before the block hashes
	ctxHeaderHash  = "zerogrid storage shard header v1"
	ctxBlockHash   = "zerogrid storage shard block v1"
	ctxSegmentAAD  = "zerogrid storage segment v1"
)

// ShardHeader is the decoded header of one shard. Share is one Shamir share
// of the segment key: String never prints it.
type ShardHeader struct {
	Version     int // FormatVersion; 1 in segments written before key binding
	Segment     SegmentID
	Index       int // 0..K+M-1; the share's X is Index+1
	K, M        int
	Compression Compression
	PlainLen    int // plaintext bytes of the whole segment
	StreamLen   int // bytes after compression, before encryption
	Share       [keySize]byte
	Blocks      [][hashSize]byte // BLAKE3 of each BlockSize block of the data
}

// String describes the header without the key share.
func (h ShardHeader) String() string {
	return fmt.Sprintf("shard %d of segment %s (k=%d, m=%d, %d bytes, compression %d)",
		h.Index, h.Segment, h.K, h.M, h.PlainLen, h.Compression)
}

// GoString is String: %#v must not print the share either.
func (h ShardHeader) GoString() string { return h.String() }

func (h *ShardHeader) layout() layout { return newLayout(h.K, h.StreamLen) }

// validate checks everything in the header that does not need the hash.
func (h *ShardHeader) validate() error {
	if h.Version != FormatVersion && h.Version != formatV1 {
		return fmt.Errorf("%w: version %d, this build reads versions %d and %d", ErrShardVersion, h.Version, formatV1, FormatVersion)
	}
	if err := checkKM(h.K, h.M); err != nil {
		return err
	}
	if h.Index < 0 || h.Index >= h.K+h.M {
		return fmt.Errorf("index %d not below k+m = %d", h.Index, h.K+h.M)
	}
	if h.PlainLen < 0 || h.PlainLen > MaxSegmentSize {
		return fmt.Errorf("plaintext length %d above %d", h.PlainLen, MaxSegmentSize)
	}
	switch h.Compression {
	case CompressNone:
		if h.StreamLen != h.PlainLen {
			return fmt.Errorf("uncompressed stream of %d bytes for %d bytes of plaintext", h.StreamLen, h.PlainLen)
		}
	case CompressS2:
		if h.StreamLen < 1 || h.StreamLen >= h.PlainLen {
			return fmt.Errorf("compressed stream of %d bytes for %d bytes of plaintext", h.StreamLen, h.PlainLen)
		}
	default:
		return fmt.Errorf("unknown compression %d", h.Compression)
	}
	return nil
}

// hasher computes the block and header hashes of shards. Hashers carry
// buffers, so the encoder keeps one per shard in flight; a hasher is not
// safe for concurrent use.
type hasher struct{ block, header *blake3.Hasher }

func newHasher() *hasher {
	return &hasher{block: blake3.NewDeriveKey(ctxBlockHash), header: blake3.NewDeriveKey(ctxHeaderHash)}
}

func sum(h *blake3.Hasher, b []byte) (out [hashSize]byte) {
	h.Reset()
	_, _ = h.Write(b)
	h.Sum(out[:0])
	return out
}

// blocks returns the hash of each BlockSize block of data, reusing out.
func (hs *hasher) blocks(data []byte, out [][hashSize]byte) [][hashSize]byte {
	out = out[:0]
	for off := 0; off < len(data); off += BlockSize {
		out = append(out, sum(hs.block, data[off:min(off+BlockSize, len(data))]))
	}
	return out
}

// encodeHeader writes h into buf[:headerLen] and returns the header hash.
// h must be valid and have one block hash per data block.
func (hs *hasher) encodeHeader(buf []byte, h *ShardHeader) [hashSize]byte {
	l := h.layout()
	b := buf[:0]
	b = append(b, shardMagic...)
	b = binary.BigEndian.AppendUint16(b, uint16(h.Version))
	b = append(b, h.Segment[:]...)
	b = append(b, byte(h.Index), byte(h.K), byte(h.M), cipherAESGCM, byte(h.Compression))
	b = binary.BigEndian.AppendUint32(b, uint32(h.PlainLen))
	b = binary.BigEndian.AppendUint32(b, uint32(h.StreamLen))
	b = append(b, h.Share[:]...)
	for _, bh := range h.Blocks[:l.blocks] {
		b = append(b, bh[:]...)
	}
	digest := sum(hs.header, b)
	_ = append(b, digest[:]...)
	return digest
}

// ParseShardHeader decodes and checks the header at the start of b (which
// may hold more: the data). It returns the header, its length in bytes and
// its hash. Any malformed, truncated or altered header is an error wrapping
// ErrBadShard or ErrShardVersion; the data is not checked.
func ParseShardHeader(b []byte) (*ShardHeader, int, [hashSize]byte, error) {
	return newHasher().parseHeader(b)
}

func (hs *hasher) parseHeader(b []byte) (*ShardHeader, int, [hashSize]byte, error) {
	var none [hashSize]byte
	if len(b) < fixedHeaderLen {
		return nil, 0, none, fmt.Errorf("%w: %d bytes, shorter than a header", ErrBadShard, len(b))
	}
	if string(b[:4]) != shardMagic {
		return nil, 0, none, fmt.Errorf("%w: bad magic %q", ErrBadShard, b[:4])
	}
	v := int(binary.BigEndian.Uint16(b[4:]))
	if v != FormatVersion && v != formatV1 {
		return nil, 0, none, fmt.Errorf("%w: version %d, this build reads versions %d and %d", ErrShardVersion, v, formatV1, FormatVersion)
	}
	if b[25] != cipherAESGCM {
		return nil, 0, none, fmt.Errorf("%w: unknown cipher %d", ErrBadShard, b[25])
	}
	h := &ShardHeader{
		Version: v,
		Index:   int(b[22]), K: int(b[23]), M: int(b[24]),
		Compression: Compression(b[26]),
		PlainLen:    int(binary.BigEndian.Uint32(b[27:])),
		StreamLen:   int(binary.BigEndian.Uint32(b[31:])),
	}
	copy(h.Segment[:], b[6:22])
	copy(h.Share[:], b[35:67])
	if err := h.validate(); err != nil {
		return nil, 0, none, fmt.Errorf("%w: %w", ErrBadShard, err)
	}
	l := h.layout()
	if len(b) < l.headerLen {
		return nil, 0, none, fmt.Errorf("%w: %d bytes, header needs %d", ErrBadShard, len(b), l.headerLen)
	}
	body := b[:l.headerLen-hashSize]
	digest := sum(hs.header, body)
	if subtle.ConstantTimeCompare(digest[:], b[len(body):l.headerLen]) != 1 {
		return nil, 0, none, fmt.Errorf("%w: header hash mismatch", ErrBadShard)
	}
	h.Blocks = make([][hashSize]byte, l.blocks)
	for i := range h.Blocks {
		copy(h.Blocks[i][:], body[fixedHeaderLen+i*hashSize:])
	}
	return h, l.headerLen, digest, nil
}

// VerifyShard checks a whole shard: its header, its exact length and the
// hash of every data block. It returns the header, the data (a sub-slice
// of b) and the header hash.
func VerifyShard(b []byte) (*ShardHeader, []byte, [hashSize]byte, error) {
	hs := newHasher()
	h, n, digest, err := hs.parseHeader(b)
	if err != nil {
		return nil, nil, digest, err
	}
	want := n + h.layout().shardLen
	if len(b) != want {
		return nil, nil, digest, fmt.Errorf("%w: %s: %d bytes, want %d", ErrBadShard, h, len(b), want)
	}
	data := b[n:]
	for i, bh := range h.Blocks {
		got := sum(hs.block, data[i*BlockSize:min((i+1)*BlockSize, len(data))])
		if subtle.ConstantTimeCompare(got[:], bh[:]) != 1 {
			return nil, nil, digest, fmt.Errorf("%w: %s: block %d (bytes %d–%d of the data) does not match its hash",
				ErrBadShard, h, i, i*BlockSize, min((i+1)*BlockSize, len(data))-1)
		}
	}
	return h, data, digest, nil
}

// segmentAAD is the associated data of every AEAD frame of a segment: a
// domain tag, the format version and every segment-wide header field, so
// that a shard header altered in any of them fails to decrypt.
func segmentAAD(h *ShardHeader) []byte {
	b := make([]byte, 0, len(ctxSegmentAAD)+1+2+16+5+8)
	b = append(b, ctxSegmentAAD...)
	b = append(b, 0)
	b = binary.BigEndian.AppendUint16(b, uint16(h.Version))
	b = append(b, h.Segment[:]...)
	b = append(b, byte(h.K), byte(h.M), cipherAESGCM, byte(h.Compression))
	b = binary.BigEndian.AppendUint32(b, uint32(h.PlainLen))
	b = binary.BigEndian.AppendUint32(b, uint32(h.StreamLen))
	return b
}
