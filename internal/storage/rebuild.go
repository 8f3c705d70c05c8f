package storage

import (
	"context"
	"fmt"

	"github.com/zerogrid/zerogrid/internal/storage/shamir"
)

// Rebuilt is one regenerated shard, ready to Put under
// ShardName(segment, Index) on a backend that placement allows.
type Rebuilt struct {
	Index  int
	Shard  []byte   // header and data
	Digest [32]byte // its header hash, for the ShardLoc
}

// Rebuild regenerates the shards with the given indices from any k
// verified shards of ref, without decrypting anything: the erasure code
// recomputes the data and Lagrange interpolation of k key shares recomputes
// the lost share. The result is byte for byte the shard the encoder wrote,
// so its digest equals the one ref records for it. This is the primitive
// repair builds on; it also returns the faults met while fetching.
func (d *Decoder) Rebuild(ctx context.Context, ref SegmentRef, indices []int) ([]Rebuilt, []ShardFault, error) {
	if err := ref.Validate(); err != nil {
		return nil, nil, err
	}
	required := make([]bool, ref.K+ref.M)
	for _, i := range indices {
		if i < 0 || i >= len(required) {
			return nil, nil, fmt.Errorf("%w: segment %s: shard index %d out of range", ErrBadRef, ref.ID, i)
		}
		required[i] = true
	}
	got, faults, err := d.fetch(ctx, ref)
	if err != nil {
		return nil, faults, err
	}
	rs, err := d.codec(ref.K, ref.M)
	if err != nil {
		return nil, faults, err
	}
	var tmpl ShardHeader
	shards := make([][]byte, ref.K+ref.M)
	shares := make([]shamir.Share, 0, ref.K)
	for idx, s := range got {
		tmpl = *s.hdr
		shards[idx] = s.data
		shares = append(shares, shamir.Share{X: byte(idx + 1), Y: s.hdr.Share[:]})
	}
	if err := rs.ReconstructSome(shards, required); err != nil {
		return nil, faults, fmt.Errorf("storage: segment %s: reconstruct: %w", ref.ID, err)
	}
	out := make([]Rebuilt, 0, len(indices))
	for _, idx := range indices {
		r, err := rebuildOne(tmpl, shares, idx, shards[idx])
		if err != nil {
			return nil, faults, fmt.Errorf("storage: segment %s: %w", ref.ID, err)
		}
		out = append(out, r)
	}
	return out, faults, nil
}

func rebuildOne(h ShardHeader, shares []shamir.Share, idx int, data []byte) (Rebuilt, error) {
	share, err := shamir.Interpolate(shares, byte(idx+1))
	if err != nil {
		return Rebuilt{}, err
	}
	h.Index = idx
	copy(h.Share[:], share)
	clear(share)
	hs := newHasher()
	h.Blocks = hs.blocks(data, nil)
	l := h.layout()
	buf := make([]byte, l.headerLen+l.shardLen)
	digest := hs.encodeHeader(buf, &h)
	copy(buf[l.headerLen:], data)
	return Rebuilt{Index: idx, Shard: buf, Digest: digest}, nil
}
