package storage

import (
	"context"
	"crypto/subtle"
	"fmt"
	"io"
	"log/slog"
	"sync"

	"github.com/klauspost/reedsolomon"

	"github.com/zerogrid/zerogrid/internal/storage/shamir"
)

// DecoderConfig configures a Decoder.
type DecoderConfig struct {
	Backends []Backend    // every backend that segment references may name
	Owner    *OwnerKey    // the owner key; nil reads only version 1 segments
	Logger   *slog.Logger // nil discards
	// Hedge is how many shards beyond k are fetched at once; the slowest
	// are cancelled when k verified shards have arrived. 0 means 1; a
	// negative value means none (fetch k, and another only on failure).
	Hedge int
	// Parallel is the number of segments fetched at once by Decode. 0
	// means 2.
	Parallel int
}

// Decoder fetches, verifies and decodes segments. It is safe for
// concurrent use.
type Decoder struct {
	backends map[string]Backend
	owner    *OwnerKey
	log      *slog.Logger
	hedge    int
	parallel int

	mu  sync.Mutex
	rss map[[2]int]reedsolomon.Encoder // by (k, m)
}

// Read is the result of reading one segment: its plaintext and the shards
// found missing or corrupt on the way, for repair (heal on read). Only
// shards examined before k verified ones arrived are reported: a shard
// whose fetch was cancelled as too slow is neither blamed nor vouched for
// (scrub reads everything).
type Read struct {
	Data   []byte
	Faults []ShardFault
}

// NewDecoder returns a Decoder over the given backends.
func NewDecoder(cfg DecoderConfig) (*Decoder, error) {
	d := &Decoder{backends: map[string]Backend{}, owner: cfg.Owner, log: cfg.Logger, hedge: cfg.Hedge, parallel: cfg.Parallel,
		rss: map[[2]int]reedsolomon.Encoder{}}
	for _, b := range cfg.Backends {
		if b.ID() == "" || d.backends[b.ID()] != nil {
			return nil, fmt.Errorf("storage: backend id %q is empty or used twice", b.ID())
		}
		d.backends[b.ID()] = b
	}
	if d.log == nil {
		d.log = slog.New(slog.DiscardHandler)
	}
	if d.hedge == 0 {
		d.hedge = 1
	}
	d.hedge = max(d.hedge, 0)
	if d.parallel <= 0 {
		d.parallel = 2
	}
	return d, nil
}

func (d *Decoder) codec(k, m int) (reedsolomon.Encoder, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if rs := d.rss[[2]int{k, m}]; rs != nil {
		return rs, nil
	}
	rs, err := reedsolomon.New(k, m)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrParams, err)
	}
	d.rss[[2]int{k, m}] = rs
	return rs, nil
}

// DecodeSegment fetches any k verified shards of ref and returns the
// segment's plaintext, in dst if it is large enough.
func (d *Decoder) DecodeSegment(ctx context.Context, ref SegmentRef, dst []byte) (Read, error) {
	if err := ref.Validate(); err != nil {
		return Read{}, err
	}
	got, faults, err := d.fetch(ctx, ref)
	if err != nil {
		return Read{Faults: faults}, err
	}
	data, err := d.decode(ref, got, dst)
	return Read{Data: data, Faults: faults}, err
}

// Decode writes the plaintext of refs, in order, to w, fetching up to
// Parallel segments at once and reusing that many plaintext buffers. It
// returns the shard faults met on the way.
func (d *Decoder) Decode(ctx context.Context, w io.Writer, refs []SegmentRef) ([]ShardFault, error) {
	var faults []ShardFault
	bufs := make(chan []byte, d.parallel) // inOrder holds at most parallel results at once
	for range d.parallel {
		bufs <- nil
	}
	i := 0
	next := func(context.Context) (func(context.Context) (Read, error), error) {
		if i == len(refs) {
			return nil, nil
		}
		ref, buf := refs[i], <-bufs
		i++
		return func(ctx context.Context) (Read, error) {
			r, err := d.DecodeSegment(ctx, ref, buf)
			if err != nil {
				bufs <- buf
			}
			return r, err
		}, nil
	}
	emit := func(r Read) error {
		faults = append(faults, r.Faults...)
		_, err := w.Write(r.Data)
		bufs <- r.Data
		return err
	}
	return faults, inOrder(ctx, d.parallel, next, emit)
}

// shard is one fetched and verified shard.
type shard struct {
	loc  ShardLoc
	hdr  *ShardHeader
	data []byte
	err  error
}

// fetch gets k verified shards of ref: data shards first, hedge more in
// parallel, one more for each failure; the rest are cancelled once k have
// arrived. It returns only after every fetch it started has returned.
func (d *Decoder) fetch(ctx context.Context, ref SegmentRef) (map[int]*shard, []ShardFault, error) {
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	results := make(chan *shard, len(ref.Shards))
	next, inflight := 0, 0
	launch := func() {
		loc := ref.Shards[next]
		next++
		inflight++
		wg.Go(func() { results <- d.fetchOne(ctx, ref, loc) })
	}
	for next < len(ref.Shards) && next < ref.K+d.hedge {
		launch()
	}
	got := map[int]*shard{}
	var faults []ShardFault
	for len(got) < ref.K && inflight > 0 {
		var s *shard
		select {
		case s = <-results:
		case <-ctx.Done():
			return nil, faults, ctx.Err() // results is buffered: no fetch blocks on it
		}
		inflight--
		if s.err == nil {
			got[s.loc.Index] = s
			continue
		}
		if ctx.Err() != nil {
			return nil, faults, ctx.Err()
		}
		faults = append(faults, ShardFault{Segment: ref.ID, Index: s.loc.Index, Backend: s.loc.Backend, Err: s.err})
		d.log.Warn("shard unusable", "segment", ref.ID.String(), "shard", s.loc.Index, "backend", s.loc.Backend, "err", s.err)
		if next < len(ref.Shards) {
			launch()
		}
	}
	if len(got) < ref.K {
		return nil, faults, &ReadError{Segment: ref.ID, Have: len(got), Need: ref.K, Faults: faults}
	}
	return got, faults, nil
}

// fetchOne reads one whole shard and checks it against ref: block hashes,
// header hash, the digest ref pins, and every header field ref states.
func (d *Decoder) fetchOne(ctx context.Context, ref SegmentRef, loc ShardLoc) *shard {
	s := &shard{loc: loc}
	b := d.backends[loc.Backend]
	if b == nil {
		s.err = fmt.Errorf("backend %q is not configured: %w", loc.Backend, ErrUnavailable)
		return s
	}
	raw, err := b.Get(ctx, ShardName(ref.ID, loc.Index), 0, -1)
	if err != nil {
		s.err = err
		return s
	}
	h, data, sum, err := VerifyShard(raw)
	switch {
	case err != nil:
		s.err = err
	case subtle.ConstantTimeCompare(sum[:], loc.Digest[:]) != 1:
		s.err = fmt.Errorf("%w: header hash differs from the one the segment reference records", ErrBadShard)
	case h.Segment != ref.ID || h.Index != loc.Index || h.K != ref.K || h.M != ref.M || h.PlainLen != ref.PlainLen:
		s.err = fmt.Errorf("%w: %s does not match the reference (segment %s, shard %d)", ErrBadShard, h, ref.ID, loc.Index)
	default:
		s.hdr, s.data = h, data
	}
	return s
}

// decode rebuilds the sealed stream from k verified shards, recovers the
// key from their shares, decrypts and decompresses.
func (d *Decoder) decode(ref SegmentRef, got map[int]*shard, dst []byte) ([]byte, error) {
	rs, err := d.codec(ref.K, ref.M)
	if err != nil {
		return nil, err
	}
	var h *ShardHeader
	shards := make([][]byte, ref.K+ref.M)
	shares := make([]shamir.Share, 0, ref.K)
	for idx, s := range got {
		if h != nil && (s.hdr.StreamLen != h.StreamLen || s.hdr.Compression != h.Compression) {
			// Only a forged reference can pin shards that disagree.
			return nil, fmt.Errorf("%w: segment %s: shards disagree on the stream length or compression", ErrBadShard, ref.ID)
		}
		h = s.hdr
		shards[idx] = s.data
		shares = append(shares, shamir.Share{X: byte(idx + 1), Y: s.hdr.Share[:]})
	}
	if err := rs.ReconstructData(shards); err != nil {
		return nil, fmt.Errorf("storage: segment %s: reconstruct: %w", ref.ID, err)
	}
	key, err := segmentKey(h, shares, d.owner)
	defer clear(key)
	if err != nil {
		return nil, fmt.Errorf("storage: segment %s: %w", ref.ID, err)
	}
	if cap(dst) < h.PlainLen {
		dst = make([]byte, h.PlainLen)
	}
	dst = dst[:h.PlainLen]
	stream := dst
	if h.Compression != CompressNone {
		stream = make([]byte, h.StreamLen)
	}
	if err := open(key, segmentAAD(h), shards[:ref.K], stream); err != nil {
		return nil, fmt.Errorf("storage: segment %s: %w", ref.ID, err)
	}
	if h.Compression != CompressNone {
		if err := decompress(dst, stream, h.Compression); err != nil {
			return nil, fmt.Errorf("storage: segment %s: %w", ref.ID, err)
		}
	}
	return dst, nil
}
