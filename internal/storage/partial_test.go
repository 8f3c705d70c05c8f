package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/zerogrid/zerogrid/internal/storage"
)

// TestPartialRead: every frame of an uncompressed segment read alone
// equals that slice of the plaintext, for several k and sizes (frames that
// straddle two data shards included), fetching less than the segment.
func TestPartialRead(t *testing.T) {
	t.Parallel()
	for _, p := range []storage.Params{{K: 2, M: 1}, {K: 4, M: 2}, {K: 5, M: 3}} {
		p.SegmentSize = 1 << 20
		for _, size := range []int{1, storage.FrameSize, storage.FrameSize + 1, 700_001, 1 << 20} {
			t.Run(fmt.Sprintf("%d+%d/%d", p.K, p.M, size), func(t *testing.T) {
				t.Parallel()
				c := newCluster(t, p, p.K+p.M)
				plain := randomBytes(size)
				w := c.put(plain)
				ctx := context.Background()
				r, err := c.dec.OpenSegment(ctx, w.Ref)
				if err != nil {
					t.Fatal(err)
				}
				for j := range r.Frames() {
					got, err := r.ReadFrame(ctx, j, nil)
					want := plain[j*storage.FrameSize : min((j+1)*storage.FrameSize, size)]
					if err != nil || !bytes.Equal(got, want) {
						t.Fatalf("frame %d: %v, equal %v", j, err, bytes.Equal(got, want))
					}
				}
				if _, err := r.ReadFrame(ctx, r.Frames(), nil); err == nil {
					t.Fatal("frame past the end read")
				}
			})
		}
	}
}

// TestPartialReadRefuses: a compressed segment, a missing data shard, a
// corrupt block and a forged header are refused, never returned.
func TestPartialReadRefuses(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := newCluster(t, small, 6)
	if _, err := c.dec.OpenSegment(ctx, c.put(text(200_000, 1)).Ref); !errors.Is(err, storage.ErrNoRangeRead) {
		t.Fatalf("compressed segment: %v, want ErrNoRangeRead", err)
	}
	plain := randomBytes(200_000)
	w := c.put(plain)
	loc := w.Ref.Shards[1]
	raw := c.raw(w.Ref.ID, loc)

	bad := bytes.Clone(raw)
	bad[len(bad)-10] ^= 1 // the last block of shard 1
	c.store(w.Ref.ID, loc, bad)
	r, err := c.dec.OpenSegment(ctx, w.Ref)
	if err != nil {
		t.Fatal(err)
	}
	failed := false
	for j := range r.Frames() {
		if _, err := r.ReadFrame(ctx, j, nil); err != nil {
			if !errors.Is(err, storage.ErrBadShard) {
				t.Fatalf("frame %d over a corrupt block: %v, want ErrBadShard", j, err)
			}
			failed = true
		}
	}
	if !failed {
		t.Fatal("a corrupt block went unnoticed")
	}

	forged := bytes.Clone(raw)
	forged[40] ^= 1 // inside the key share: the header hash breaks
	c.store(w.Ref.ID, loc, forged)
	if _, err := c.dec.OpenSegment(ctx, w.Ref); !errors.Is(err, storage.ErrNoRangeRead) || !errors.Is(err, storage.ErrBadShard) {
		t.Fatalf("forged header: %v", err)
	}
	c.store(w.Ref.ID, loc, raw)
	c.faulty[c.byID(loc.Backend)].SetDown(true)
	if _, err := c.dec.OpenSegment(ctx, w.Ref); !errors.Is(err, storage.ErrNoRangeRead) {
		t.Fatalf("data shard down: %v, want ErrNoRangeRead", err)
	}
}
