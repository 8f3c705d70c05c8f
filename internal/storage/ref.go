package storage

import (
	"encoding/hex"
	"fmt"
)

// SegmentID names a segment: 16 random bytes chosen by the encoder.
type SegmentID [16]byte

// String returns the id in lower-case hex.
func (id SegmentID) String() string { return hex.EncodeToString(id[:]) }

// ShardName is the object name under which shard index of segment id is
// stored on a backend: "shard-<32 hex digits>-<index, 3 digits>".
func ShardName(id SegmentID, index int) string {
	return fmt.Sprintf("shard-%s-%03d", id, index)
}

// SegmentRef is what the metadata layer records for one segment: enough to
// fetch, verify and decode it, and nothing secret. Shards name backends by
// id only: no address, namespace or password ever appears here or in a
// shard. The digest of each shard's header pins the exact shard, so a
// forged shard that is self-consistent is still rejected.
//
// Shards lists the shards that were stored, in index order; an index in
// 0..K+M-1 that is absent is missing and due for repair.
type SegmentRef struct {
	ID       SegmentID  `cbor:"id"`
	K        int        `cbor:"k"`
	M        int        `cbor:"m"`
	PlainLen int        `cbor:"len,omitempty"` // plaintext bytes in the segment
	Shards   []ShardLoc `cbor:"shards"`
}

// ShardLoc says where one shard of a segment is and what its header hashes
// to.
type ShardLoc struct {
	Index   int      `cbor:"i,omitempty"`
	Backend string   `cbor:"b"` // Backend.ID()
	Digest  [32]byte `cbor:"h"` // header hash of the shard (see docs/formats/shard.md)
}

// Validate checks the reference's bounds and that shard indices are in
// range, increasing and unique. It is called on every reference before use,
// since references come from stored metadata.
func (r *SegmentRef) Validate() error {
	if err := checkKM(r.K, r.M); err != nil {
		return fmt.Errorf("%w: segment %s: %w", ErrBadRef, r.ID, err)
	}
	if r.PlainLen < 0 || r.PlainLen > MaxSegmentSize {
		return fmt.Errorf("%w: segment %s: length %d out of [0, %d]", ErrBadRef, r.ID, r.PlainLen, MaxSegmentSize)
	}
	last := -1
	for _, s := range r.Shards {
		if s.Index <= last || s.Index >= r.K+r.M {
			return fmt.Errorf("%w: segment %s: shard index %d out of order or above %d", ErrBadRef, r.ID, s.Index, r.K+r.M-1)
		}
		if s.Backend == "" {
			return fmt.Errorf("%w: segment %s: shard %d has no backend", ErrBadRef, r.ID, s.Index)
		}
		last = s.Index
	}
	return nil
}

// Missing returns the shard indices that the reference does not locate.
func (r *SegmentRef) Missing() []int {
	have := make(map[int]bool, len(r.Shards))
	for _, s := range r.Shards {
		have[s.Index] = true
	}
	var missing []int
	for i := range r.K + r.M {
		if !have[i] {
			missing = append(missing, i)
		}
	}
	return missing
}
