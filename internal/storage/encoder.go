package storage

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/klauspost/compress/s2"
	"github.com/klauspost/reedsolomon"

	"github.com/zerogrid/zerogrid/internal/storage/shamir"
)

// Config configures an Encoder.
type Config struct {
	Params   Params
	Backends []Backend // at least K+M, with room for MaxPerDomain per failure domain
	// Owner binds every segment key to the owner (NewOwnerKey from the
	// mnemonic's storage secret), so that no number of backends can read
	// a segment without it. Required.
	Owner *OwnerKey
	// Rand supplies segment ids, segment keys and Shamir coefficients. Nil
	// means crypto/rand.Reader. It is used under a lock, so it need not be
	// safe for concurrent use.
	Rand   io.Reader
	Logger *slog.Logger // nil discards
	// Parallel is the number of segments in flight at once (each holds
	// about (2 + (k+m)/k) × SegmentSize of memory). 0 means 2.
	Parallel int
	// ShardTimeout bounds each shard's Put; 0 means no bound beyond ctx.
	ShardTimeout time.Duration

	legacyV1 bool // write format version 1 (unbound keys): tests of old stores only
}

// Encoder turns plaintext into segments and stores each segment's shards
// on the backends. It is safe for concurrent use; memory is bounded by
// Parallel segments whatever the number of callers.
type Encoder struct {
	p       Params
	rs      reedsolomon.Encoder
	place   *placer
	log     *slog.Logger
	timeout time.Duration
	bufs    chan *segBuf
	seq     atomic.Uint64
	owner   *OwnerKey
	version int

	randMu sync.Mutex
	rand   io.Reader
}

// segBuf is the working memory of one segment in flight.
type segBuf struct {
	plain   []byte
	comp    []byte
	scratch []byte    // one sealed frame
	shards  [][]byte  // header + data of each shard
	hashers []*hasher // one per shard
	blocks  [][][hashSize]byte
}

// Written is the result of storing one segment: its reference, for the
// metadata layer, and the shards that could not be stored, for repair.
type Written struct {
	Ref    SegmentRef
	Faults []ShardFault
}

// NewEncoder checks cfg (parameters, placement) and returns an Encoder.
func NewEncoder(cfg Config) (*Encoder, error) {
	p := cfg.Params.withDefaults()
	if err := p.Validate(); err != nil {
		return nil, err
	}
	pl, err := newPlacer(cfg.Backends, p.K, p.M)
	if err != nil {
		return nil, err
	}
	rs, err := reedsolomon.New(p.K, p.M)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrParams, err)
	}
	e := &Encoder{p: p, rs: rs, place: pl, log: cfg.Logger, timeout: cfg.ShardTimeout, rand: cfg.Rand,
		owner: cfg.Owner, version: FormatVersion}
	switch {
	case cfg.legacyV1:
		e.version = formatV1
	case cfg.Owner == nil:
		return nil, fmt.Errorf("%w: no owner key: derive one with storage.NewOwnerKey from the mnemonic's storage secret", ErrParams)
	}
	if e.log == nil {
		e.log = slog.New(slog.DiscardHandler)
	}
	if e.rand == nil {
		e.rand = rand.Reader
	}
	n := cfg.Parallel
	if n <= 0 {
		n = 2
	}
	e.bufs = make(chan *segBuf, n)
	for range n {
		e.bufs <- nil // allocated on first use
	}
	return e, nil
}

// Params returns the encoder's parameters (with defaults applied).
func (e *Encoder) Params() Params { return e.p }

func (e *Encoder) acquire(ctx context.Context) (*segBuf, error) {
	select {
	case b := <-e.bufs:
		if b == nil {
			l := newLayout(e.p.K, e.p.SegmentSize)
			n := e.p.K + e.p.M
			b = &segBuf{
				plain:   make([]byte, e.p.SegmentSize),
				comp:    make([]byte, s2.MaxEncodedLen(e.p.SegmentSize)),
				scratch: make([]byte, FrameSize+tagSize),
				shards:  make([][]byte, n),
				hashers: make([]*hasher, n),
				blocks:  make([][][hashSize]byte, n),
			}
			for i := range n {
				b.shards[i] = make([]byte, l.headerLen+l.shardLen)
				b.hashers[i] = newHasher()
				b.blocks[i] = make([][hashSize]byte, 0, l.blocks)
			}
		}
		return b, nil
	case <-ctx.Done():
		return nil, ctx.Err()
	}
}

func (e *Encoder) release(b *segBuf) { e.bufs <- b }

// EncodeSegment stores one segment of at most SegmentSize bytes.
func (e *Encoder) EncodeSegment(ctx context.Context, plain []byte) (Written, error) {
	if len(plain) > e.p.SegmentSize {
		return Written{}, fmt.Errorf("storage: segment of %d bytes exceeds the segment size %d", len(plain), e.p.SegmentSize)
	}
	b, err := e.acquire(ctx)
	if err != nil {
		return Written{}, err
	}
	defer e.release(b)
	return e.encode(ctx, b, plain)
}

// Encode reads r to the end, cuts it into segments of SegmentSize bytes
// (the last one shorter; none for an empty r) and stores them, up to
// Parallel at a time. It calls fn with each segment's result in stream
// order and returns the number of bytes read. On error, segments already
// passed to fn stay stored; the caller, which records nothing for them,
// leaves them to garbage collection.
func (e *Encoder) Encode(ctx context.Context, r io.Reader, fn func(Written) error) (int64, error) {
	var total int64
	done := false
	next := func(ctx context.Context) (func(context.Context) (Written, error), error) {
		if done {
			return nil, nil
		}
		b, err := e.acquire(ctx)
		if err != nil {
			return nil, err
		}
		n, err := io.ReadFull(r, b.plain)
		total += int64(n)
		switch {
		case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
			done = true
		case err != nil:
			e.release(b)
			return nil, fmt.Errorf("storage: read input: %w", err)
		}
		if n == 0 {
			e.release(b)
			return nil, nil
		}
		return func(ctx context.Context) (Written, error) {
			defer e.release(b)
			return e.encode(ctx, b, b.plain[:n])
		}, nil
	}
	err := inOrder(ctx, cap(e.bufs), next, fn)
	return total, err
}

// secrets draws a segment id and a segment secret, splits the secret into
// shares and derives the segment's AEAD key from it.
func (e *Encoder) secrets() (SegmentID, []byte, []shamir.Share, error) {
	e.randMu.Lock()
	defer e.randMu.Unlock()
	var id SegmentID
	secret := make([]byte, keySize)
	if _, err := io.ReadFull(e.rand, id[:]); err != nil {
		return id, nil, nil, fmt.Errorf("storage: read randomness: %w", err)
	}
	if _, err := io.ReadFull(e.rand, secret); err != nil {
		return id, nil, nil, fmt.Errorf("storage: read randomness: %w", err)
	}
	shares, err := shamir.Split(e.rand, secret, e.p.K, e.p.K+e.p.M)
	if err != nil {
		return id, nil, nil, err
	}
	key, err := aeadKey(&ShardHeader{Version: e.version, Segment: id}, secret, e.owner)
	return id, key, shares, err
}

// encode compresses, encrypts and erasure-codes plain in b, then stores
// the shards.
func (e *Encoder) encode(ctx context.Context, b *segBuf, plain []byte) (Written, error) {
	id, key, shares, err := e.secrets()
	defer clear(key)
	if err != nil {
		return Written{}, err
	}
	stream, comp := compress(b.comp, plain)
	h := ShardHeader{Version: e.version, Segment: id, K: e.p.K, M: e.p.M, Compression: comp, PlainLen: len(plain), StreamLen: len(stream)}
	l := h.layout()
	data := make([][]byte, len(b.shards))
	for i := range b.shards {
		b.shards[i] = b.shards[i][:l.headerLen+l.shardLen]
		data[i] = b.shards[i][l.headerLen:]
	}
	if err := seal(key, segmentAAD(&h), stream, data[:e.p.K], b.scratch); err != nil {
		return Written{}, fmt.Errorf("storage: encrypt segment %s: %w", id, err)
	}
	if err := e.rs.Encode(data); err != nil {
		return Written{}, fmt.Errorf("storage: erasure-code segment %s: %w", id, err)
	}
	return e.store(ctx, h, shares, b)
}

// cleanupTimeout bounds the removal of the shards of a failed write.
const cleanupTimeout = 30 * time.Second

// store writes the headers and puts every shard on its backend in
// parallel. It succeeds if at least k+1 shards were stored; otherwise it
// removes those it stored and returns a *WriteError naming the failures.
func (e *Encoder) store(ctx context.Context, h ShardHeader, shares []shamir.Share, b *segBuf) (Written, error) {
	targets := e.place.place(e.seq.Add(1) - 1)
	locs := make([]ShardLoc, len(b.shards))
	errs := make([]error, len(b.shards))
	var wg sync.WaitGroup
	for i := range b.shards {
		wg.Go(func() { locs[i], errs[i] = e.storeShard(ctx, h, i, shares[i].Y, b, targets[i]) })
	}
	wg.Wait()
	ref := SegmentRef{ID: h.Segment, K: h.K, M: h.M, PlainLen: h.PlainLen}
	var faults []ShardFault
	for i, err := range errs {
		if err == nil {
			ref.Shards = append(ref.Shards, locs[i])
		} else {
			faults = append(faults, ShardFault{Segment: h.Segment, Index: i, Backend: locs[i].Backend, Err: err})
		}
	}
	if err := ctx.Err(); err != nil {
		e.remove(ctx, ref)
		return Written{}, fmt.Errorf("storage: segment %s: %w", h.Segment, err)
	}
	for _, f := range faults {
		e.log.Warn("shard not stored", "segment", h.Segment.String(), "shard", f.Index, "backend", f.Backend, "err", f.Err)
	}
	if need := h.K + 1; len(ref.Shards) < need {
		e.remove(ctx, ref)
		return Written{}, &WriteError{Segment: h.Segment, Stored: len(ref.Shards), Need: need, Faults: faults}
	}
	e.log.Debug("segment stored", "segment", h.Segment.String(), "bytes", h.PlainLen, "shards", len(ref.Shards), "missing", len(faults))
	return Written{Ref: ref, Faults: faults}, nil
}

// storeShard completes shard i's header (index, key share, block hashes)
// in place and puts the shard on target.
func (e *Encoder) storeShard(ctx context.Context, h ShardHeader, i int, share []byte, b *segBuf, target Backend) (ShardLoc, error) {
	h.Index = i
	copy(h.Share[:], share)
	clear(share)
	hs := b.hashers[i]
	b.blocks[i] = hs.blocks(b.shards[i][h.layout().headerLen:], b.blocks[i])
	h.Blocks = b.blocks[i]
	loc := ShardLoc{Index: i, Backend: target.ID(), Digest: hs.encodeHeader(b.shards[i], &h)}
	return loc, e.put(ctx, target, ShardName(h.Segment, i), b.shards[i])
}

func (e *Encoder) put(ctx context.Context, b Backend, name string, data []byte) error {
	if e.timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, e.timeout)
		defer cancel()
	}
	return b.Put(ctx, name, data)
}

// remove deletes the stored shards of a segment that failed to write, even
// if ctx was cancelled. Failures are only logged: the shards are garbage
// that no reference points to.
func (e *Encoder) remove(ctx context.Context, ref SegmentRef) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), cleanupTimeout)
	defer cancel()
	for _, s := range ref.Shards {
		for _, b := range e.place.order {
			if b.ID() != s.Backend {
				continue
			}
			if err := b.Delete(ctx, ShardName(ref.ID, s.Index)); err != nil {
				e.log.Warn("remove shard of failed write", "segment", ref.ID.String(), "shard", s.Index, "backend", s.Backend, "err", err)
			}
		}
	}
}
