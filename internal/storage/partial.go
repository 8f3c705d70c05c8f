package storage

import (
	"context"
	"crypto/cipher"
	"crypto/subtle"
	"errors"
	"fmt"
	"sync"

	"github.com/zerogrid/zerogrid/internal/storage/shamir"
)

// Partial reads. Reed-Solomon here is systematic: data shard i holds bytes
// [i·ShardLen, (i+1)·ShardLen) of the sealed stream verbatim, and the
// stream is sealed in independent 64 KiB AEAD frames. So a small read of
// an uncompressed segment needs only the headers of the k data shards
// (for the key shares and block hashes, once per segment) and the one or
// two 64 KiB shard blocks that hold the frames it touches, verified
// against their BLAKE3 block hashes before they are decrypted: the same
// checks as a whole-segment read, on less data.

// ErrNoRangeRead: the segment cannot be read in part (it is compressed, or
// a data shard is unusable); read it whole with DecodeSegment.
var ErrNoRangeRead = errors.New("storage: segment cannot be read in part")

// SegmentReader reads frames of one uncompressed segment. It is safe for
// concurrent use. It holds the segment's AEAD (its key) until dropped.
type SegmentReader struct {
	d       *Decoder
	ref     SegmentRef
	hdrs    []*ShardHeader // the k data shards' verified headers
	hdrLen  int
	backend []Backend // of each data shard
	aead    cipher.AEAD
	aad     []byte
	l       layout
}

// OpenSegment fetches and verifies the headers of ref's k data shards and
// recovers the segment key. It fails with ErrNoRangeRead when a part read
// is impossible (a compressed segment, a data shard missing from ref, or
// one whose header cannot be read or does not verify): the caller then
// reads the segment whole, which reads around bad shards.
func (d *Decoder) OpenSegment(ctx context.Context, ref SegmentRef) (*SegmentReader, error) {
	if err := ref.Validate(); err != nil {
		return nil, err
	}
	l := newLayout(ref.K, ref.PlainLen) // as if uncompressed; checked below
	r := &SegmentReader{d: d, ref: ref, hdrs: make([]*ShardHeader, ref.K), backend: make([]Backend, ref.K), hdrLen: l.headerLen, l: l}
	locs := map[int]ShardLoc{}
	for _, loc := range ref.Shards {
		locs[loc.Index] = loc
	}
	errs := make([]error, ref.K)
	var wg sync.WaitGroup
	for i := range ref.K {
		loc, ok := locs[i]
		b := d.backends[loc.Backend]
		if !ok || b == nil {
			return nil, fmt.Errorf("%w: data shard %d of segment %s not available", ErrNoRangeRead, i, ref.ID)
		}
		r.backend[i] = b
		wg.Go(func() {
			raw, err := b.Get(ctx, ShardName(ref.ID, i), 0, int64(l.headerLen))
			if err != nil {
				errs[i] = err
				return
			}
			h, _, sum, err := ParseShardHeader(raw)
			switch {
			case err != nil:
				errs[i] = err
			case subtle.ConstantTimeCompare(sum[:], loc.Digest[:]) != 1:
				errs[i] = fmt.Errorf("%w: header hash differs from the one the segment reference records", ErrBadShard)
			case h.Segment != ref.ID || h.Index != i || h.K != ref.K || h.M != ref.M || h.PlainLen != ref.PlainLen:
				errs[i] = fmt.Errorf("%w: %s does not match the reference", ErrBadShard, h)
			case h.Compression != CompressNone || h.StreamLen != ref.PlainLen:
				errs[i] = fmt.Errorf("%w: compressed segment", ErrNoRangeRead)
			default:
				r.hdrs[i] = h
			}
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	for i, err := range errs {
		if err != nil {
			return nil, fmt.Errorf("%w: segment %s shard %d: %w", ErrNoRangeRead, ref.ID, i, err)
		}
	}
	shares := make([]shamir.Share, ref.K)
	for i, h := range r.hdrs {
		shares[i] = shamir.Share{X: byte(i + 1), Y: h.Share[:]}
	}
	key, err := segmentKey(r.hdrs[0], shares, d.owner) // owner-bound for version 2 shards, as decode derives it
	defer clear(key)
	if err != nil {
		return nil, fmt.Errorf("storage: segment %s: %w", ref.ID, err)
	}
	if r.aead, err = newAEAD(key); err != nil {
		return nil, err
	}
	r.aad = segmentAAD(r.hdrs[0])
	return r, nil
}

// Frames is the number of frames of the segment.
func (r *SegmentReader) Frames() int { return r.l.frames }

// ReadFrame returns the plaintext of frame j (FrameSize bytes, the last one
// shorter), in dst if it is large enough. It fetches only the shard
// blocks holding the frame and verifies their hashes; a failure wraps
// ErrBadShard, ErrDecrypt or the backend's error.
func (r *SegmentReader) ReadFrame(ctx context.Context, j int, dst []byte) ([]byte, error) {
	if j < 0 || j >= r.l.frames {
		return nil, fmt.Errorf("storage: segment %s has %d frames, not %d", r.ref.ID, r.l.frames, j+1)
	}
	plain := min(FrameSize, r.ref.PlainLen-j*FrameSize)
	start := j * (FrameSize + tagSize)
	sealed := make([]byte, plain+tagSize)
	// The frame's sealed bytes lie in one data shard or straddle two.
	for got := 0; got < len(sealed); {
		s := start + got
		i, in := s/r.l.shardLen, s%r.l.shardLen
		n := min(len(sealed)-got, r.l.shardLen-in)
		if err := r.readShard(ctx, i, in, sealed[got:got+n]); err != nil {
			return nil, err
		}
		got += n
	}
	var nonce [12]byte
	frameNonce(nonce[:], j, j == r.l.frames-1)
	if cap(dst) < plain {
		dst = make([]byte, plain)
	}
	out, err := r.aead.Open(dst[:0], nonce[:], sealed, r.aad)
	if err != nil {
		return nil, fmt.Errorf("%w: segment %s frame %d of %d fails authentication", ErrDecrypt, r.ref.ID, j, r.l.frames)
	}
	return out, nil
}

// readShard fills p with data shard i's bytes from offset in, fetching the
// whole BlockSize blocks that hold them and checking their hashes.
func (r *SegmentReader) readShard(ctx context.Context, i, in int, p []byte) error {
	b0, b1 := in/BlockSize, (in+len(p)-1)/BlockSize
	from, to := b0*BlockSize, min((b1+1)*BlockSize, r.l.shardLen)
	raw, err := r.backend[i].Get(ctx, ShardName(r.ref.ID, i), int64(r.hdrLen+from), int64(to-from))
	if err != nil {
		return fmt.Errorf("segment %s shard %d: %w", r.ref.ID, i, err)
	}
	if len(raw) != to-from {
		return fmt.Errorf("%w: segment %s shard %d: %d bytes, want %d", ErrBadShard, r.ref.ID, i, len(raw), to-from)
	}
	hs := newHasher()
	for blk := b0; blk <= b1; blk++ {
		o := (blk - b0) * BlockSize
		got := sum(hs.block, raw[o:min(o+BlockSize, len(raw))])
		if subtle.ConstantTimeCompare(got[:], r.hdrs[i].Blocks[blk][:]) != 1 {
			return fmt.Errorf("%w: segment %s shard %d block %d does not match its hash", ErrBadShard, r.ref.ID, i, blk)
		}
	}
	copy(p, raw[in-from:])
	return nil
}
