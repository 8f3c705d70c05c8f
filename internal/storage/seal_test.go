package storage

import (
	"bytes"
	"crypto/rand"
	"errors"
	"fmt"
	"testing"
)

func testHeader(streamLen, k int) *ShardHeader {
	return &ShardHeader{Version: FormatVersion, K: k, M: 2, PlainLen: streamLen, StreamLen: streamLen, Segment: SegmentID{1, 2, 3}}
}

// sealed returns the data shards of a sealed stream of n random bytes.
func sealed(t *testing.T, key []byte, h *ShardHeader, stream []byte) [][]byte {
	t.Helper()
	l := h.layout()
	parts := make([][]byte, h.K)
	for i := range parts {
		parts[i] = bytes.Repeat([]byte{0xee}, l.shardLen) // dirty, as a reused buffer is
	}
	if err := seal(key, segmentAAD(h), stream, parts, make([]byte, FrameSize+tagSize)); err != nil {
		t.Fatal(err)
	}
	return parts
}

func TestSealOpenRoundTrip(t *testing.T) {
	t.Parallel()
	key := make([]byte, keySize)
	rand.Read(key)
	for _, n := range []int{0, 1, FrameSize - 1, FrameSize, FrameSize + 1, 3*FrameSize + 17} {
		for _, k := range []int{2, 3, 16} {
			t.Run(fmt.Sprintf("%d-bytes-k%d", n, k), func(t *testing.T) {
				t.Parallel()
				stream := make([]byte, n)
				rand.Read(stream)
				h := testHeader(n, k)
				parts := sealed(t, key, h, stream)
				l := h.layout()
				all := bytes.Join(parts, nil)
				if tail := all[l.sealedLen:]; !bytes.Equal(tail, make([]byte, len(tail))) {
					t.Fatal("padding after the sealed stream is not zero")
				}
				got := make([]byte, n)
				if err := open(key, segmentAAD(h), parts, got); err != nil || !bytes.Equal(got, stream) {
					t.Fatalf("open: %v (equal %v)", err, bytes.Equal(got, stream))
				}
			})
		}
	}
}

// TestStreamDetectsTampering: every rearrangement an attacker holding all
// shards could make fails authentication.
func TestStreamDetectsTampering(t *testing.T) {
	t.Parallel()
	key := make([]byte, keySize)
	rand.Read(key)
	const n = 3 * FrameSize
	stream := make([]byte, n)
	rand.Read(stream)
	h := testHeader(n, 2)
	frame := FrameSize + tagSize
	edit := map[string]func(s []byte) []byte{
		"flip a bit": func(s []byte) []byte { s[FrameSize+5] ^= 1; return s },
		"swap frames": func(s []byte) []byte {
			out := append([]byte(nil), s[frame:2*frame]...)
			out = append(out, s[:frame]...)
			return append(out, s[2*frame:]...)
		},
		"repeat a frame": func(s []byte) []byte { copy(s[frame:2*frame], s[:frame]); return s },
	}
	for name, fn := range edit {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			s := bytes.Join(sealed(t, key, h, stream), nil)
			s = fn(s)
			if err := open(key, segmentAAD(h), [][]byte{s}, make([]byte, n)); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("open after %s: %v, want ErrDecrypt", name, err)
			}
		})
	}
	t.Run("truncate to whole frames", func(t *testing.T) {
		t.Parallel()
		// Drop the last frame and claim a shorter stream: the new last
		// frame was sealed without the last-frame flag, and the AAD
		// states the original length.
		s := bytes.Join(sealed(t, key, h, stream), nil)
		short := *h
		short.StreamLen, short.PlainLen = 2*FrameSize, 2*FrameSize
		if err := open(key, segmentAAD(&short), [][]byte{s[:2*frame]}, make([]byte, 2*FrameSize)); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("open of a truncated stream: %v, want ErrDecrypt", err)
		}
		if err := open(key, segmentAAD(h), [][]byte{s[:2*frame]}, make([]byte, 2*FrameSize)); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("open of a truncated stream, original AAD: %v, want ErrDecrypt", err)
		}
	})
	t.Run("other segment's AAD", func(t *testing.T) {
		t.Parallel()
		parts := sealed(t, key, h, stream)
		for _, change := range []func(*ShardHeader){
			func(o *ShardHeader) { o.Segment[0] ^= 1 },
			func(o *ShardHeader) { o.K = 3 },
			func(o *ShardHeader) { o.M = 1 },
			func(o *ShardHeader) { o.PlainLen++ },
			func(o *ShardHeader) { o.Compression = CompressS2 },
		} {
			o := *h
			change(&o)
			if err := open(key, segmentAAD(&o), parts, make([]byte, n)); !errors.Is(err, ErrDecrypt) {
				t.Fatalf("open under another header's AAD: %v, want ErrDecrypt", err)
			}
		}
	})
	t.Run("short input", func(t *testing.T) {
		t.Parallel()
		parts := sealed(t, key, h, stream)
		if err := open(key, segmentAAD(h), [][]byte{parts[0][:100]}, make([]byte, n)); !errors.Is(err, ErrDecrypt) {
			t.Fatalf("open of too few bytes: %v, want ErrDecrypt", err)
		}
	})
}

func TestCompressDecision(t *testing.T) {
	t.Parallel()
	random := make([]byte, 1<<20)
	rand.Read(random)
	if out, c := compress(nil, random); c != CompressNone || &out[0] != &random[0] {
		t.Fatalf("random data: compression %d, want none and the input itself", c)
	}
	text := bytes.Repeat([]byte("zerogrid stores segments. "), 40000)
	out, c := compress(nil, text)
	if c != CompressS2 || len(out) >= len(text)/4 {
		t.Fatalf("repetitive text: compression %d to %d of %d bytes, want S2 and under a quarter", c, len(out), len(text))
	}
	got := make([]byte, len(text))
	if err := decompress(got, out, CompressS2); err != nil || !bytes.Equal(got, text) {
		t.Fatalf("decompress: %v", err)
	}
	if err := decompress(make([]byte, len(text)-1), out, CompressS2); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("decompress into the wrong length: %v, want an error", err)
	}
	if err := decompress(got, []byte{0xff, 0xff, 0xff}, CompressS2); !errors.Is(err, ErrDecrypt) {
		t.Fatalf("decompress of garbage: %v, want an error", err)
	}
	if _, c := compress(nil, nil); c != CompressNone {
		t.Fatal("empty input compressed")
	}
}

func TestLayout(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ k, stream, frames, sealed, shard, blocks int }{
		{2, 0, 1, 16, 8, 1},
		{4, 100, 1, 116, 29, 1},
		{16, 8 << 20, 128, 8<<20 + 128*16, (8<<20 + 128*16 + 15) / 16, 9},
		{2, 16 << 20, 256, 16<<20 + 256*16, (16<<20 + 256*16) / 2, 129},
	} {
		l := newLayout(tc.k, tc.stream)
		if l.frames != tc.frames || l.sealedLen != tc.sealed || l.shardLen != tc.shard || l.blocks != tc.blocks {
			t.Errorf("layout(k=%d, %d) = %+v, want frames %d sealed %d shard %d blocks %d", tc.k, tc.stream, l, tc.frames, tc.sealed, tc.shard, tc.blocks)
		}
		if l.headerLen != fixedHeaderLen+(l.blocks+1)*hashSize {
			t.Errorf("header length %d", l.headerLen)
		}
	}
}
