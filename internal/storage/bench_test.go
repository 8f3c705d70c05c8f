package storage_test

import (
	"bytes"
	"context"
	"io"
	"testing"

	"github.com/zerogrid/zerogrid/internal/storage"
)

// The benchmarks run the whole pipeline (S2 check, AES-256-GCM frames,
// Reed-Solomon, BLAKE3, parallel puts or fetches) at 16+4 with 8 MiB
// segments over in-memory backends, on incompressible data. "segment" is
// one EncodeSegment/DecodeSegment at a time; "stream" is Encode/Decode of
// 8 segments with the default two in flight. Bytes are plaintext bytes.

var benchParams = storage.Params{K: 16, M: 4, SegmentSize: 8 << 20}

const benchStream = 8

func benchCluster(b *testing.B) *cluster {
	return newCluster(b, benchParams, benchParams.K+benchParams.M)
}

// drop deletes a segment's shards so the benchmark does not accumulate them.
func (c *cluster) drop(refs ...storage.SegmentRef) {
	for _, ref := range refs {
		for _, s := range ref.Shards {
			if err := c.mems[c.byID(s.Backend)].Delete(context.Background(), storage.ShardName(ref.ID, s.Index)); err != nil {
				c.t.Fatal(err)
			}
		}
	}
}

func BenchmarkEncode(b *testing.B) {
	ctx := context.Background()
	b.Run("segment", func(b *testing.B) {
		c := benchCluster(b)
		plain := randomBytes(benchParams.SegmentSize)
		b.SetBytes(int64(len(plain)))
		b.ReportAllocs()
		for b.Loop() {
			w, err := c.enc.EncodeSegment(ctx, plain)
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			c.drop(w.Ref)
			b.StartTimer()
		}
	})
	b.Run("stream", func(b *testing.B) {
		c := benchCluster(b)
		plain := randomBytes(benchStream * benchParams.SegmentSize)
		b.SetBytes(int64(len(plain)))
		b.ReportAllocs()
		for b.Loop() {
			var refs []storage.SegmentRef
			_, err := c.enc.Encode(ctx, bytes.NewReader(plain), func(w storage.Written) error {
				refs = append(refs, w.Ref)
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			b.StopTimer()
			c.drop(refs...)
			b.StartTimer()
		}
	})
}

func BenchmarkDecode(b *testing.B) {
	ctx := context.Background()
	b.Run("segment", func(b *testing.B) {
		c := benchCluster(b)
		w := c.put(randomBytes(benchParams.SegmentSize))
		dst := make([]byte, benchParams.SegmentSize)
		b.SetBytes(int64(benchParams.SegmentSize))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.dec.DecodeSegment(ctx, w.Ref, dst); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("stream", func(b *testing.B) {
		c := benchCluster(b)
		var refs []storage.SegmentRef
		for range benchStream {
			refs = append(refs, c.put(randomBytes(benchParams.SegmentSize)).Ref)
		}
		b.SetBytes(int64(benchStream * benchParams.SegmentSize))
		b.ReportAllocs()
		for b.Loop() {
			if _, err := c.dec.Decode(ctx, io.Discard, refs); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("segment-m-lost", func(b *testing.B) {
		// Four data shards unreachable: every read reconstructs.
		c := benchCluster(b)
		w := c.put(randomBytes(benchParams.SegmentSize))
		for _, s := range w.Ref.Shards[:benchParams.M] {
			c.faulty[c.byID(s.Backend)].SetDown(true)
		}
		dst := make([]byte, benchParams.SegmentSize)
		b.SetBytes(int64(benchParams.SegmentSize))
		for b.Loop() {
			if _, err := c.dec.DecodeSegment(ctx, w.Ref, dst); err != nil {
				b.Fatal(err)
			}
		}
	})
}
