package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"runtime"
	"strings"
	"testing"
	"testing/iotest"

	"github.com/zerogrid/zerogrid/internal/storage"
	"github.com/zerogrid/zerogrid/internal/storage/mem"
	"github.com/zerogrid/zerogrid/internal/wire"
)

func TestSegmentRoundTrip(t *testing.T) {
	t.Parallel()
	for _, p := range []storage.Params{{K: 2, M: 1}, {K: 4, M: 2}, {K: 16, M: 4}, {K: 3, M: 5}} {
		p.SegmentSize = 512 << 10
		for _, size := range []int{0, 1, 1000, storage.FrameSize, storage.FrameSize + 1, 300_000} {
			for _, kind := range []string{"random", "text"} {
				t.Run(fmt.Sprintf("%d+%d/%d/%s", p.K, p.M, size, kind), func(t *testing.T) {
					t.Parallel()
					c := newCluster(t, p, p.K+p.M)
					plain := randomBytes(size)
					if kind == "text" {
						plain = text(size, uint64(size))
					}
					w := c.put(plain)
					if len(w.Faults) != 0 || len(w.Ref.Shards) != p.K+p.M || w.Ref.PlainLen != size {
						t.Fatalf("Written = %+v, want all %d shards and length %d", w, p.K+p.M, size)
					}
					r, err := c.dec.DecodeSegment(context.Background(), w.Ref, nil)
					if err != nil || !bytes.Equal(r.Data, plain) || len(r.Faults) != 0 {
						t.Fatalf("DecodeSegment: %v, faults %v, equal %v", err, r.Faults, bytes.Equal(r.Data, plain))
					}
				})
			}
		}
	}
}

func TestCompressionIsRecordedInTheHeader(t *testing.T) {
	t.Parallel()
	c := newCluster(t, small, 6)
	for _, tc := range []struct {
		name  string
		plain []byte
		want  storage.Compression
	}{
		{"text", text(50_000, 1), storage.CompressS2},
		{"random", randomBytes(50_000), storage.CompressNone},
	} {
		w := c.put(tc.plain)
		h, _, _, err := storage.VerifyShard(c.raw(w.Ref.ID, w.Ref.Shards[0]))
		if err != nil {
			t.Fatal(err)
		}
		if h.Compression != tc.want || h.PlainLen != len(tc.plain) {
			t.Fatalf("%s: header says compression %d, %d bytes; want %d, %d", tc.name, h.Compression, h.PlainLen, tc.want, len(tc.plain))
		}
		if tc.want == storage.CompressS2 && h.StreamLen >= h.PlainLen/2 {
			t.Fatalf("%s: stream of %d bytes for %d of text", tc.name, h.StreamLen, h.PlainLen)
		}
	}
}

func TestStreamRoundTrip(t *testing.T) {
	t.Parallel()
	c := newCluster(t, small, 6)
	for _, size := range []int{0, 1, small.SegmentSize, small.SegmentSize + 1, 5*small.SegmentSize + 123} {
		t.Run(fmt.Sprint(size), func(t *testing.T) {
			t.Parallel()
			plain := randomBytes(size)
			var refs []storage.SegmentRef
			// A reader that returns one byte at a time still fills whole segments.
			n, err := c.enc.Encode(context.Background(), iotest.OneByteReader(bytes.NewReader(plain)), func(w storage.Written) error {
				refs = append(refs, w.Ref)
				return nil
			})
			want := (size + small.SegmentSize - 1) / small.SegmentSize
			if err != nil || n != int64(size) || len(refs) != want {
				t.Fatalf("Encode = %d, %v with %d segments; want %d bytes in %d", n, err, len(refs), size, want)
			}
			for i, r := range refs[:max(0, len(refs)-1)] {
				if r.PlainLen != small.SegmentSize {
					t.Fatalf("segment %d holds %d bytes, want a full segment", i, r.PlainLen)
				}
			}
			var out bytes.Buffer
			faults, err := c.dec.Decode(context.Background(), &out, refs)
			if err != nil || len(faults) != 0 || !bytes.Equal(out.Bytes(), plain) {
				t.Fatalf("Decode: %v, faults %v, equal %v", err, faults, bytes.Equal(out.Bytes(), plain))
			}
		})
	}
}

func TestEncodeErrors(t *testing.T) {
	t.Parallel()
	c := newCluster(t, small, 6)
	ctx := context.Background()
	if _, err := c.enc.EncodeSegment(ctx, make([]byte, small.SegmentSize+1)); err == nil {
		t.Fatal("EncodeSegment accepted more than a segment")
	}
	boom := errors.New("boom")
	if _, err := c.enc.Encode(ctx, iotest.ErrReader(boom), func(storage.Written) error { return nil }); !errors.Is(err, boom) {
		t.Fatalf("Encode of a failing reader: %v, want its error", err)
	}
	stop := errors.New("stop")
	calls := 0
	_, err := c.enc.Encode(ctx, bytes.NewReader(randomBytes(4*small.SegmentSize)), func(storage.Written) error { calls++; return stop })
	if !errors.Is(err, stop) || calls != 1 {
		t.Fatalf("Encode with a failing callback: %v after %d calls, want its error after 1", err, calls)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, err := c.enc.EncodeSegment(cctx, []byte("x")); !errors.Is(err, context.Canceled) {
		t.Fatalf("EncodeSegment with a cancelled context: %v", err)
	}
	var out bytes.Buffer
	if _, err := c.dec.Decode(ctx, &out, []storage.SegmentRef{{K: 1, M: 1}}); !errors.Is(err, storage.ErrBadRef) {
		t.Fatalf("Decode of an invalid reference: %v, want ErrBadRef", err)
	}
}

func TestParamsValidate(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		p    storage.Params
		want string
	}{
		{storage.Params{K: 1, M: 2}, "k must be at least 2"},
		{storage.Params{K: 4, M: 0}, "m must be at least 1"},
		{storage.Params{K: 200, M: 56}, "at most 255"},
		{storage.Params{K: 4, M: 2, SegmentSize: 1000}, "segment size 1000"},
		{storage.Params{K: 4, M: 2, SegmentSize: 32 << 20}, "segment size"},
	} {
		err := tc.p.Validate()
		if !errors.Is(err, storage.ErrParams) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: %v, want ErrParams saying %q", tc.p, err, tc.want)
		}
	}
	if err := (storage.Params{K: 16, M: 4}).Validate(); err != nil {
		t.Errorf("16+4 with the default segment size: %v", err)
	}
}

func TestRefWireRoundTrip(t *testing.T) {
	t.Parallel()
	c := newCluster(t, small, 6)
	ref := c.put([]byte("hello")).Ref
	b, err := wire.Marshal(ref)
	if err != nil {
		t.Fatal(err)
	}
	var back storage.SegmentRef
	if err := wire.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	r, err := c.dec.DecodeSegment(context.Background(), back, nil)
	if err != nil || string(r.Data) != "hello" {
		t.Fatalf("decode through a wire round trip: %q, %v", r.Data, err)
	}
	for _, s := range ref.Shards {
		if strings.Contains(string(b), "password") || s.Backend != fmt.Sprintf("b%d", c.byID(s.Backend)) {
			t.Fatalf("shard location %+v is not a bare backend id", s)
		}
	}
}

func TestRefValidate(t *testing.T) {
	t.Parallel()
	good := storage.SegmentRef{K: 2, M: 1, PlainLen: 10, Shards: []storage.ShardLoc{{Index: 0, Backend: "a"}, {Index: 2, Backend: "b"}}}
	if err := good.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := good.Missing(); len(got) != 1 || got[0] != 1 {
		t.Fatalf("Missing = %v, want [1]", got)
	}
	for name, edit := range map[string]func(*storage.SegmentRef){
		"k too small":     func(r *storage.SegmentRef) { r.K = 1 },
		"negative length": func(r *storage.SegmentRef) { r.PlainLen = -1 },
		"length too big":  func(r *storage.SegmentRef) { r.PlainLen = storage.MaxSegmentSize + 1 },
		"index too big":   func(r *storage.SegmentRef) { r.Shards[1].Index = 3 },
		"out of order":    func(r *storage.SegmentRef) { r.Shards[0].Index = 2; r.Shards[1].Index = 0 },
		"duplicate":       func(r *storage.SegmentRef) { r.Shards[1].Index = 0 },
		"no backend":      func(r *storage.SegmentRef) { r.Shards[0].Backend = "" },
	} {
		r := good
		r.Shards = append([]storage.ShardLoc(nil), good.Shards...)
		edit(&r)
		if err := r.Validate(); !errors.Is(err, storage.ErrBadRef) {
			t.Errorf("%s: %v, want ErrBadRef", name, err)
		}
	}
}

// discard accepts and forgets every Put.
type discard struct{ *mem.Backend }

func (discard) Put(context.Context, string, []byte) error { return nil }

// cycle repeats a random block forever: incompressible per segment, cheap.
type cycle struct {
	block []byte
	off   int
}

func (c *cycle) Read(p []byte) (int, error) {
	n := copy(p, c.block[c.off:])
	c.off = (c.off + n) % len(c.block)
	return n, nil
}

// TestMemoryIsBounded checks that Encode reuses its segment buffers: once
// they exist, streaming many segments allocates a small fraction of the
// input. (Not parallel: it reads the process's allocation counter.)
func TestMemoryIsBounded(t *testing.T) {
	b := make([]storage.Backend, 6)
	for i := range b {
		b[i] = discard{mem.New(fmt.Sprintf("d%d", i), fmt.Sprintf("dom%d", i))}
	}
	const seg = 1 << 20
	enc, err := storage.NewEncoder(storage.Config{Owner: testOwner, Params: storage.Params{K: 4, M: 2, SegmentSize: seg}, Backends: b})
	if err != nil {
		t.Fatal(err)
	}
	src := &cycle{block: randomBytes(seg)}
	encode := func(segments int64) {
		n, err := enc.Encode(context.Background(), io.LimitReader(src, segments*seg), func(storage.Written) error { return nil })
		if err != nil || n != segments*seg {
			t.Fatalf("Encode: %d, %v", n, err)
		}
	}
	encode(4) // allocate the buffers
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	const segments = 32
	encode(segments)
	runtime.ReadMemStats(&after)
	if grew := after.TotalAlloc - before.TotalAlloc; grew > segments*seg/16 {
		t.Fatalf("encoding %d MiB allocated %d KiB, want under 1/16 of the input", segments, grew>>10)
	}
}

// countingReader counts the random bytes the encoder draws.
type countingReader struct{ n int }

func (c *countingReader) Read(p []byte) (int, error) {
	c.n += len(p)
	for i := range p {
		p[i] = byte(c.n + i)
	}
	return len(p), nil
}

func TestRandomnessIsInjected(t *testing.T) {
	t.Parallel()
	c := newCluster(t, small, 6)
	rng := &countingReader{}
	enc, err := storage.NewEncoder(storage.Config{Owner: testOwner, Params: small, Backends: c.backends, Rand: rng})
	if err != nil {
		t.Fatal(err)
	}
	w, err := enc.EncodeSegment(context.Background(), []byte("data"))
	if err != nil {
		t.Fatal(err)
	}
	// Segment id, key, and k−1 coefficients per key byte: nothing else.
	if want := 16 + 32 + (small.K-1)*32; rng.n != want {
		t.Fatalf("encoder drew %d random bytes, want %d", rng.n, want)
	}
	if r, err := c.dec.DecodeSegment(context.Background(), w.Ref, nil); err != nil || string(r.Data) != "data" {
		t.Fatalf("decode: %q, %v", r.Data, err)
	}
	broken, err := storage.NewEncoder(storage.Config{Owner: testOwner, Params: small, Backends: c.backends, Rand: iotest.ErrReader(errors.New("no entropy"))})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := broken.EncodeSegment(context.Background(), []byte("data")); err == nil || !strings.Contains(err.Error(), "no entropy") {
		t.Fatalf("encode without randomness: %v, want the reader's error", err)
	}
}
