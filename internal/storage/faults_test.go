package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/storage"
)

// subsets calls fn with every k-element subset of 0..n-1.
func subsets(n, k int, fn func([]int)) {
	idx := make([]int, 0, k)
	var rec func(start int)
	rec = func(start int) {
		if len(idx) == k {
			fn(idx)
			return
		}
		for i := start; i < n; i++ {
			idx = append(idx, i)
			rec(i + 1)
			idx = idx[:len(idx)-1]
		}
	}
	rec(0)
}

// TestAnyKShardsRecover takes every choice of k shards of a 4+2 segment,
// makes the backends of all the others unreachable, and reads.
func TestAnyKShardsRecover(t *testing.T) {
	t.Parallel()
	c := newCluster(t, small, 6)
	plain := text(150_000, 7)
	w := c.put(plain)
	subsets(6, 4, func(keep []int) {
		up := map[int]bool{}
		for _, i := range keep {
			up[i] = true
		}
		for _, s := range w.Ref.Shards {
			c.faulty[c.byID(s.Backend)].SetDown(!up[s.Index])
		}
		r, err := c.dec.DecodeSegment(context.Background(), w.Ref, nil)
		if err != nil || !bytes.Equal(r.Data, plain) {
			t.Fatalf("shards %v: %v", keep, err)
		}
		if len(r.Faults) > 2 {
			t.Fatalf("shards %v: %d faults, at most the 2 down shards expected", keep, len(r.Faults))
		}
		for _, f := range r.Faults {
			if up[f.Index] || !errors.Is(f.Err, storage.ErrUnavailable) {
				t.Fatalf("shards %v: fault %v", keep, f)
			}
		}
	})
}

func TestFewerThanKShardsFail(t *testing.T) {
	t.Parallel()
	c := newCluster(t, small, 6)
	w := c.put(randomBytes(10_000))
	for _, s := range w.Ref.Shards[:3] { // m+1 = 3 shards gone
		c.faulty[c.byID(s.Backend)].SetDown(true)
	}
	_, err := c.dec.DecodeSegment(context.Background(), w.Ref, nil)
	var re *storage.ReadError
	if !errors.As(err, &re) || !errors.Is(err, storage.ErrTooFewShards) || re.Have != 3 || re.Need != 4 || len(re.Faults) != 3 {
		t.Fatalf("read with 3 of 6 shards: %v, want a ReadError with 3 of 4 and 3 faults", err)
	}
}

// TestFlippedByteIsDetected flips one byte in each shard in turn, in the
// header and in the data: the shard is rejected by its hash, reported, and
// the read returns the right data from the others.
func TestFlippedByteIsDetected(t *testing.T) {
	t.Parallel()
	c := newCluster(t, small, 6)
	dec := c.seq
	plain := randomBytes(200_000)
	w := c.put(plain)
	for _, s := range w.Ref.Shards {
		orig := c.raw(w.Ref.ID, s)
		hdr := storage.HeaderLen(4, 200_000)
		for _, pos := range []int{0, 5, 30, 40, 70, hdr - 1, hdr, hdr + 30_000, len(orig) - 1} {
			t.Run(fmt.Sprintf("shard%d/byte%d", s.Index, pos), func(t *testing.T) {
				bad := bytes.Clone(orig)
				bad[pos] ^= 0x40
				if _, _, _, err := storage.VerifyShard(bad); err == nil {
					t.Fatal("VerifyShard accepted a flipped byte")
				}
				c.store(w.Ref.ID, s, bad)
				defer c.store(w.Ref.ID, s, orig)
				if s.Index == 4 {
					// Parity is fetched only in place of a data shard: take
					// one away, so the corrupt parity shard is read too.
					down := c.faulty[c.byID(w.Ref.Shards[0].Backend)]
					down.SetDown(true)
					defer down.SetDown(false)
				}
				r, err := dec.DecodeSegment(context.Background(), w.Ref, nil)
				if err != nil || !bytes.Equal(r.Data, plain) {
					t.Fatalf("read with a corrupt shard: %v", err)
				}
				switch {
				case s.Index == 5: // never fetched while four others are fine
					if len(r.Faults) != 0 {
						t.Fatalf("faults %v, want none", r.Faults)
					}
					return
				case s.Index == 4:
					if len(r.Faults) != 2 || !errors.Is(r.Faults[0].Err, storage.ErrUnavailable) {
						t.Fatalf("faults %v, want shard 0 unavailable and shard 4 corrupt", r.Faults)
					}
					r.Faults = r.Faults[1:]
				}
				if len(r.Faults) != 1 || r.Faults[0].Index != s.Index ||
					!errors.Is(r.Faults[0].Err, storage.ErrBadShard) && !errors.Is(r.Faults[0].Err, storage.ErrShardVersion) {
					t.Fatalf("faults %v, want shard %d reported as corrupt", r.Faults, s.Index)
				}
			})
		}
	}
}

// TestForgedShardIsRejected writes a self-consistent shard (valid header
// hash and block hashes) with another key share: only the digest pinned in
// the segment reference can catch it, and it does.
func TestForgedShardIsRejected(t *testing.T) {
	t.Parallel()
	c := newCluster(t, small, 6)
	plain := randomBytes(1000)
	w := c.put(plain)
	s := w.Ref.Shards[1]
	h, data, _, err := storage.VerifyShard(c.raw(w.Ref.ID, s))
	if err != nil {
		t.Fatal(err)
	}
	h.Share[0] ^= 1
	forged, _ := storage.EncodeHeader(h, data)
	if _, _, _, err := storage.VerifyShard(forged); err != nil {
		t.Fatalf("the forged shard should be self-consistent: %v", err)
	}
	c.store(w.Ref.ID, s, forged)
	r, err := c.seq.DecodeSegment(context.Background(), w.Ref, nil)
	if err != nil || !bytes.Equal(r.Data, plain) {
		t.Fatalf("read: %v", err)
	}
	if len(r.Faults) != 1 || r.Faults[0].Index != 1 || !strings.Contains(r.Faults[0].Err.Error(), "segment reference records") {
		t.Fatalf("faults %v, want shard 1 rejected by the pinned digest", r.Faults)
	}
}

// TestShardOfAnotherSegmentIsRejected swaps in a valid shard of another
// segment under this segment's name.
func TestShardOfAnotherSegmentIsRejected(t *testing.T) {
	t.Parallel()
	c := newCluster(t, small, 6)
	plain := randomBytes(1000)
	w1, w2 := c.put(plain), c.put(randomBytes(1000))
	c.store(w1.Ref.ID, w1.Ref.Shards[0], c.raw(w2.Ref.ID, w2.Ref.Shards[0]))
	r, err := c.seq.DecodeSegment(context.Background(), w1.Ref, nil)
	if err != nil || !bytes.Equal(r.Data, plain) || len(r.Faults) != 1 || !errors.Is(r.Faults[0].Err, storage.ErrBadShard) {
		t.Fatalf("read: %v, faults %v", err, r.Faults)
	}
}

// TestWriteToleratesMMinusOneFailures: with m−1 backends down a write
// still stores k+1 shards and reports the rest; with m down it fails,
// names the backends and leaves nothing behind.
func TestWriteToleratesMMinusOneFailures(t *testing.T) {
	t.Parallel()
	p := storage.Params{K: 4, M: 3, SegmentSize: storage.MinSegmentSize}
	c := newCluster(t, p, 7)
	c.faulty[2].SetDown(true)
	c.faulty[5].SetFull(true)
	plain := randomBytes(5000)
	w := c.put(plain)
	if len(w.Ref.Shards) != 5 || len(w.Faults) != 2 {
		t.Fatalf("stored %d shards with %d faults, want 5 and 2", len(w.Ref.Shards), len(w.Faults))
	}
	if got := w.Ref.Missing(); len(got) != 2 {
		t.Fatalf("Missing = %v, want the 2 failed indices", got)
	}
	r, err := c.dec.DecodeSegment(context.Background(), w.Ref, nil)
	if err != nil || !bytes.Equal(r.Data, plain) {
		t.Fatalf("read of a degraded segment: %v", err)
	}

	c.faulty[3].SetDown(true) // now m = 3 down: only k = 4 could be stored
	_, err = c.enc.EncodeSegment(context.Background(), plain)
	var we *storage.WriteError
	if !errors.As(err, &we) || we.Stored != 4 || we.Need != 5 || !errors.Is(err, storage.ErrTooFewShards) || !errors.Is(err, storage.ErrFull) {
		t.Fatalf("write with m backends down: %v, want a WriteError (4 stored, 5 needed) that matches ErrFull", err)
	}
	for _, id := range []string{`"b2"`, `"b3"`, `"b5"`} {
		if !strings.Contains(err.Error(), id) {
			t.Errorf("error %q does not name backend %s", err, id)
		}
	}
	for i, m := range c.mems {
		var left []string
		_ = m.List(context.Background(), storage.ShardName(we.Segment, 0)[:38], func(i storage.Info) error { left = append(left, i.Name); return nil })
		if len(left) != 0 {
			t.Errorf("backend %d kept %v of the failed write", i, left)
		}
	}
}

// TestSlowShardsAreCancelled: a backend that never answers a Get does not
// delay a read (a hedged fetch replaces it) and its fetch is cancelled.
func TestSlowShardsAreCancelled(t *testing.T) {
	t.Parallel()
	c := newCluster(t, small, 6)
	plain := randomBytes(100_000)
	w := c.put(plain)
	slow := c.faulty[c.byID(w.Ref.Shards[0].Backend)]
	slow.SetHang(true, false)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r, err := c.dec.DecodeSegment(ctx, w.Ref, nil)
	if err != nil || !bytes.Equal(r.Data, plain) {
		t.Fatalf("read with a hanging backend: %v", err)
	}
	if len(r.Faults) != 0 {
		t.Fatalf("a cancelled slow fetch was reported as a fault: %v", r.Faults)
	}
	for slow.Cancelled() != 1 {
		if ctx.Err() != nil {
			t.Fatal("the hanging fetch was never cancelled")
		}
		time.Sleep(time.Millisecond)
	}
	// Hedged fetches start k+1 shards at once, not all k+m.
	total := 0
	for _, f := range c.faulty {
		total += f.Gets()
	}
	if total != 5 {
		t.Fatalf("%d Gets, want k+1 = 5", total)
	}
}

func TestHangingPutTimesOut(t *testing.T) {
	t.Parallel()
	c := newCluster(t, small, 6)
	enc, err := storage.NewEncoder(storage.Config{Owner: testOwner, Params: small, Backends: c.backends, ShardTimeout: 50 * time.Millisecond})
	if err != nil {
		t.Fatal(err)
	}
	c.faulty[4].SetHang(false, true)
	w, err := enc.EncodeSegment(context.Background(), []byte("data"))
	if err != nil || len(w.Faults) != 1 || w.Faults[0].Backend != "b4" || !errors.Is(w.Faults[0].Err, context.DeadlineExceeded) {
		t.Fatalf("write with a hanging backend: %v, faults %v", err, w.Faults)
	}
	if !storage.IsRetryable(w.Faults[0].Err) {
		t.Fatal("a timed-out put is not retryable")
	}
}

// TestRebuildIsByteIdentical regenerates lost shards from k others: the
// result is the very shard the encoder wrote, with the same digest.
func TestRebuildIsByteIdentical(t *testing.T) {
	t.Parallel()
	c := newCluster(t, small, 6)
	w := c.put(text(180_000, 3))
	lost := []int{0, 5}
	for _, i := range lost {
		c.faulty[c.byID(w.Ref.Shards[i].Backend)].SetDown(true)
	}
	out, faults, err := c.dec.Rebuild(context.Background(), w.Ref, lost)
	if err != nil || len(out) != 2 {
		t.Fatalf("Rebuild: %v (faults %v)", err, faults)
	}
	for _, r := range out {
		loc := w.Ref.Shards[r.Index]
		if want := c.raw(w.Ref.ID, loc); !bytes.Equal(r.Shard, want) || r.Digest != loc.Digest {
			t.Fatalf("rebuilt shard %d differs from the original", r.Index)
		}
	}
	if _, _, err := c.dec.Rebuild(context.Background(), w.Ref, []int{6}); !errors.Is(err, storage.ErrBadRef) {
		t.Fatalf("Rebuild of index 6 in a 4+2 segment: %v, want ErrBadRef", err)
	}
}

func TestCancelledReadReturnsContextError(t *testing.T) {
	t.Parallel()
	c := newCluster(t, small, 6)
	w := c.put([]byte("x"))
	for _, f := range c.faulty {
		f.SetHang(true, false)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := c.dec.DecodeSegment(ctx, w.Ref, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("read with every backend hanging: %v, want the deadline", err)
	}
}
