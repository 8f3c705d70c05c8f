package storage_test

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"testing"

	"github.com/zerogrid/zerogrid/internal/storage"
)

func shardsOf(t testing.TB, plain []byte) (*cluster, storage.Written, [][]byte) {
	c := newCluster(t, storage.Params{K: 2, M: 1, SegmentSize: 256 << 10}, 3)
	w := c.put(plain)
	var raws [][]byte
	for _, s := range w.Ref.Shards {
		raws = append(raws, c.raw(w.Ref.ID, s))
	}
	return c, w, raws
}

func TestShardHeaderFields(t *testing.T) {
	t.Parallel()
	plain := randomBytes(70_000)
	_, w, raws := shardsOf(t, plain)
	for i, raw := range raws {
		h, data, digest, err := storage.VerifyShard(raw)
		if err != nil {
			t.Fatal(err)
		}
		if h.Segment != w.Ref.ID || h.Index != i || h.K != 2 || h.M != 1 || h.PlainLen != 70_000 ||
			h.StreamLen != 70_000 || h.Compression != storage.CompressNone || digest != w.Ref.Shards[i].Digest {
			t.Fatalf("shard %d header %+v does not describe the segment", i, h)
		}
		if len(h.Blocks) != 1 || len(data) != (70_000+2*16+1)/2 {
			t.Fatalf("shard %d: %d blocks, %d data bytes", i, len(h.Blocks), len(data))
		}
		ph, n, pd, err := storage.ParseShardHeader(raw)
		if err != nil || n != len(raw)-len(data) || pd != digest || ph.Share != h.Share {
			t.Fatalf("ParseShardHeader disagrees with VerifyShard: %v", err)
		}
		for _, out := range []string{h.String(), fmt.Sprintf("%v", h), fmt.Sprintf("%+v", h), fmt.Sprintf("%#v", h), fmt.Sprintf("%v", *h)} {
			if bytes.Contains([]byte(out), []byte(hex.EncodeToString(h.Share[:4]))) {
				t.Fatalf("header printed its key share: %s", out)
			}
		}
	}
}

// TestEveryHeaderByteIsProtected flips each bit position's byte of the
// header in turn, and truncates the shard at every length: each is refused.
func TestEveryHeaderByteIsProtected(t *testing.T) {
	t.Parallel()
	_, _, raws := shardsOf(t, text(100_000, 1))
	raw := raws[0]
	_, n, _, err := storage.ParseShardHeader(raw)
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		bad := bytes.Clone(raw)
		bad[i] ^= 0x01
		_, _, _, err := storage.VerifyShard(bad)
		if !errors.Is(err, storage.ErrBadShard) && !errors.Is(err, storage.ErrShardVersion) {
			t.Fatalf("byte %d of the header flipped: %v, want a refusal", i, err)
		}
	}
	for cut := 0; cut < len(raw); cut += 1 + cut/8 {
		if _, _, _, err := storage.VerifyShard(raw[:cut]); !errors.Is(err, storage.ErrBadShard) {
			t.Fatalf("shard cut to %d of %d bytes: %v, want ErrBadShard", cut, len(raw), err)
		}
	}
	if _, _, _, err := storage.VerifyShard(append(bytes.Clone(raw), 0)); !errors.Is(err, storage.ErrBadShard) {
		t.Fatalf("shard with a trailing byte: %v, want ErrBadShard", err)
	}
}

func TestShardVersionIsNamed(t *testing.T) {
	t.Parallel()
	_, _, raws := shardsOf(t, []byte("v"))
	for _, v := range []byte{0, 3, 0xff} {
		bad := bytes.Clone(raws[0])
		bad[5] = v
		_, _, _, err := storage.ParseShardHeader(bad)
		if want := fmt.Sprintf("version %d", v); !errors.Is(err, storage.ErrShardVersion) || !bytes.Contains([]byte(err.Error()), []byte(want)) {
			t.Fatalf("version %d shard: %v, want ErrShardVersion naming %s", v, err, want)
		}
	}
}

// seeds returns real shards for the fuzz corpora.
func seeds(f *testing.F) [][]byte {
	var out [][]byte
	for _, plain := range [][]byte{nil, []byte("x"), text(5000, 2), randomBytes(3000)} {
		_, _, raws := shardsOf(f, plain)
		out = append(out, raws...)
	}
	return out
}

func FuzzDecodeShardHeader(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
		f.Add(s[:len(s)/2])
	}
	f.Add([]byte("ZGSH\x00\x01"))
	f.Fuzz(func(t *testing.T, b []byte) {
		h, n, digest, err := storage.ParseShardHeader(b)
		if err != nil {
			if !errors.Is(err, storage.ErrBadShard) && !errors.Is(err, storage.ErrShardVersion) {
				t.Fatalf("error %v wraps neither ErrBadShard nor ErrShardVersion", err)
			}
			return
		}
		// An accepted header is exactly the encoding of what was decoded.
		again, d := storage.EncodeHeaderOnly(h)
		if n > len(b) || !bytes.Equal(again, b[:n]) || d != digest {
			t.Fatalf("accepted header does not re-encode to its own %d bytes", n)
		}
	})
}

func FuzzVerifyShard(f *testing.F) {
	for _, s := range seeds(f) {
		f.Add(s)
		bad := bytes.Clone(s)
		bad[len(bad)-1] ^= 1
		f.Add(bad)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		h, data, digest, err := storage.VerifyShard(b)
		if err != nil {
			if !errors.Is(err, storage.ErrBadShard) && !errors.Is(err, storage.ErrShardVersion) {
				t.Fatalf("error %v wraps neither ErrBadShard nor ErrShardVersion", err)
			}
			return
		}
		// An accepted shard is exactly what the encoder would write for
		// this header and data.
		again, d := storage.EncodeHeader(h, data)
		if !bytes.Equal(again, b) || d != digest {
			t.Fatal("accepted shard does not re-encode to itself")
		}
	})
}
