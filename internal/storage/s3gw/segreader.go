package s3gw

import (
	"context"
	"fmt"
	"io"
	"sync"

	"github.com/zerogrid/zerogrid/internal/storage"
)

// segmentReader reads bytes [pos, end) of a file from its segments, one
// segment at a time, fetching the next one while the current one is read.
// It holds at most two segments of memory.
type segmentReader struct {
	pool   *bufPool
	ctx    context.Context
	cancel context.CancelFunc
	s      Store
	segs   []storage.SegmentRef
	starts []int64 // offset of each segment in the file; starts[len(segs)] = size

	pos, end int64
	cur      []byte // plaintext of segment curIdx
	curIdx   int
	spare    []byte
	pending  chan fetched // the prefetch of segment pendIdx, if any
	pendIdx  int
}

type fetched struct {
	data []byte
	err  error
}

func newSegmentReader(ctx context.Context, pool *bufPool, s Store, segs []storage.SegmentRef, pos, end int64) *segmentReader {
	ctx, cancel := context.WithCancel(ctx)
	r := &segmentReader{pool: pool, ctx: ctx, cancel: cancel, s: s, segs: segs, pos: pos, end: end, curIdx: -1, pendIdx: -1}
	r.starts = make([]int64, len(segs)+1)
	for i, sg := range segs {
		r.starts[i+1] = r.starts[i] + int64(sg.PlainLen)
	}
	return r
}

func (r *segmentReader) Read(p []byte) (int, error) {
	if r.pos >= r.end {
		return 0, io.EOF
	}
	if r.curIdx < 0 || r.pos >= r.starts[r.curIdx+1] || r.pos < r.starts[r.curIdx] {
		if err := r.load(r.segmentOf(r.pos)); err != nil {
			return 0, err
		}
	}
	off := r.pos - r.starts[r.curIdx]
	stop := min(int64(len(r.cur)), r.end-r.starts[r.curIdx])
	n := copy(p, r.cur[off:stop])
	r.pos += int64(n)
	return n, nil
}

func (r *segmentReader) segmentOf(pos int64) int {
	i := 0
	for i+1 < len(r.segs) && r.starts[i+1] <= pos {
		i++
	}
	return i
}

// load makes segment i current, from the prefetch if it is the one under
// way, and starts fetching the segment after it.
func (r *segmentReader) load(i int) error {
	if i >= len(r.segs) {
		return fmt.Errorf("s3gw: read past the last segment")
	}
	var f fetched
	if r.pendIdx == i {
		select {
		case f = <-r.pending:
		case <-r.ctx.Done():
			return r.ctx.Err()
		}
		r.pendIdx = -1
	} else {
		r.drain()
		f.data, f.err = r.s.ReadSegment(r.ctx, r.segs[i], r.buffer())
	}
	if f.err != nil {
		return fmt.Errorf("read segment %d of %d: %w", i, len(r.segs), f.err)
	}
	if int64(len(f.data)) != r.starts[i+1]-r.starts[i] {
		return fmt.Errorf("s3gw: segment %d has %d bytes, its reference says %d", i, len(f.data), r.starts[i+1]-r.starts[i])
	}
	r.spare, r.cur, r.curIdx = r.cur, f.data, i
	if i+1 < len(r.segs) && r.starts[i+1] < r.end {
		r.prefetch(i + 1)
	}
	return nil
}

func (r *segmentReader) prefetch(i int) {
	ch := make(chan fetched, 1)
	r.pending, r.pendIdx = ch, i
	dst := r.buffer()
	go func() {
		data, err := r.s.ReadSegment(r.ctx, r.segs[i], dst)
		ch <- fetched{data, err}
	}()
}

// buffer returns the spare buffer, or one from the pool.
func (r *segmentReader) buffer() []byte {
	b := r.spare
	r.spare = nil
	if b == nil {
		b = r.pool.get()
	}
	return b
}

// drain waits for a prefetch that is no longer wanted.
func (r *segmentReader) drain() {
	if r.pendIdx >= 0 {
		f := <-r.pending
		r.pool.put(f.data)
		r.pendIdx = -1
	}
}

// Close cancels a fetch under way, waits for it and returns the buffers.
func (r *segmentReader) Close() error {
	r.cancel()
	r.drain()
	r.pool.put(r.cur)
	r.pool.put(r.spare)
	r.cur, r.spare = nil, nil
	return nil
}

// bufPool recycles segment buffers between reads, so that a restore
// reading many ranges does not allocate two segments per request.
type bufPool struct {
	size int
	p    sync.Pool
}

func (p *bufPool) get() []byte {
	if b, ok := p.p.Get().(*[]byte); ok {
		return *b
	}
	return make([]byte, 0, p.size)
}

func (p *bufPool) put(b []byte) {
	if cap(b) >= p.size {
		b = b[:0]
		p.p.Put(&b)
	}
}
