package storage

import "fmt"

// Format constants of shard format version 2 (docs/formats/shard.md).
// Version 1 differs only in the segment key (not bound to the owner); it is
// still read, never written.
const (
	FormatVersion = 2
	formatV1      = 1

	FrameSize = 64 << 10 // plaintext bytes per AEAD frame
	BlockSize = 64 << 10 // shard data bytes per BLAKE3 block hash
	tagSize   = 16       // AES-GCM tag
	keySize   = 32       // AES-256 key, and so each Shamir share
	hashSize  = 32       // BLAKE3-256

	MinSegmentSize     = 64 << 10 // smallest configurable segment size (tests)
	MaxSegmentSize     = 16 << 20 // largest segment, and largest plaintext a shard may claim
	DefaultSegmentSize = 8 << 20
	MaxShards          = 255 // k+m: Shamir X values run over the non-zero bytes
)

// Params are the erasure-coding parameters and segment size of an Encoder.
type Params struct {
	K           int // data shards: any K shards recover a segment
	M           int // parity shards: up to M shards may be lost
	SegmentSize int // plaintext bytes per segment; 0 means DefaultSegmentSize
}

// withDefaults fills zero fields with defaults.
func (p Params) withDefaults() Params {
	if p.SegmentSize == 0 {
		p.SegmentSize = DefaultSegmentSize
	}
	return p
}

// Validate checks the parameters (after defaults) and says what to change.
func (p Params) Validate() error {
	p = p.withDefaults()
	if err := checkKM(p.K, p.M); err != nil {
		return err
	}
	if p.SegmentSize < MinSegmentSize || p.SegmentSize > MaxSegmentSize {
		return fmt.Errorf("%w: segment size %d: want %d to %d bytes (4–16 MiB recommended)", ErrParams, p.SegmentSize, MinSegmentSize, MaxSegmentSize)
	}
	return nil
}

// checkKM enforces 2 ≤ k, 1 ≤ m, k+m ≤ 255. k = 1 is refused because then
// every shard holds the whole key (a 1-of-n Shamir share is the secret).
func checkKM(k, m int) error {
	switch {
	case k < 2:
		return fmt.Errorf("%w: k = %d: k must be at least 2, or every shard would hold the whole key", ErrParams, k)
	case m < 1:
		return fmt.Errorf("%w: m = %d: m must be at least 1, or losing one backend loses data", ErrParams, m)
	case k+m > MaxShards:
		return fmt.Errorf("%w: k+m = %d: at most %d shards per segment", ErrParams, k+m, MaxShards)
	}
	return nil
}

// layout holds the sizes that follow from a segment's k and lengths. They
// are computed, never stored, so a shard cannot state inconsistent sizes.
type layout struct {
	frames    int // AEAD frames: at least 1, so an empty stream still has a tag
	sealedLen int // stream length plus one tag per frame
	shardLen  int // bytes of data per shard: ceil(sealedLen / k)
	blocks    int // block hashes per shard
	headerLen int // bytes of the shard header including its hash
}

func newLayout(k, streamLen int) layout {
	var l layout
	l.frames = max(1, (streamLen+FrameSize-1)/FrameSize)
	l.sealedLen = streamLen + l.frames*tagSize
	l.shardLen = (l.sealedLen + k - 1) / k
	l.blocks = (l.shardLen + BlockSize - 1) / BlockSize
	l.headerLen = fixedHeaderLen + l.blocks*hashSize + hashSize
	return l
}
