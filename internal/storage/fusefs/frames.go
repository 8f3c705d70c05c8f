package fusefs

import (
	"context"
	"errors"
	"sync"

	"github.com/zerogrid/zerogrid/internal/storage"
)

// Small random reads go through 64 KiB frames (storage.SegmentReader):
// a miss fetches and verifies one or two shard blocks instead of decoding
// a whole segment. Sequential reads keep decoding whole segments with a
// read-ahead, which is cheaper per byte.

const (
	// frameCacheFrames is how many decrypted frames stay cached (64 KiB
	// each).
	frameCacheFrames = 512
	// segReaders is how many segments' verified headers and keys stay
	// open for frame reads.
	segReaders = 64
	// bigRead is the size from which a read decodes whole segments even
	// when it is not sequential.
	bigRead = 256 << 10
	// seqWindow: a read starting within this distance of where the
	// handle's last read ended is taken as sequential (the kernel's
	// read-ahead requests arrive slightly out of order).
	seqWindow = 1 << 20
)

type frameKey struct {
	seg   storage.SegmentID
	frame int
}

// segReaderCache keeps SegmentReaders, least recently used dropped first.
type segReaderCache struct {
	mu    sync.Mutex
	items map[storage.SegmentID]*readerItem
	tick  uint64
}

type readerItem struct {
	r    *storage.SegmentReader
	used uint64
}

func (c *segReaderCache) get(id storage.SegmentID) *storage.SegmentReader {
	c.mu.Lock()
	defer c.mu.Unlock()
	it := c.items[id]
	if it == nil {
		return nil
	}
	c.tick++
	it.used = c.tick
	return it.r
}

func (c *segReaderCache) put(id storage.SegmentID, r *storage.SegmentReader) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.items == nil {
		c.items = map[storage.SegmentID]*readerItem{}
	}
	c.tick++
	c.items[id] = &readerItem{r: r, used: c.tick}
	for len(c.items) > segReaders {
		var oldest storage.SegmentID
		first := true
		for k, v := range c.items {
			if first || v.used < c.items[oldest].used {
				oldest, first = k, false
			}
		}
		delete(c.items, oldest)
	}
}

// readFrames copies [in, in+len(dest)) of segment ref into dest through
// the frame cache. It fails with storage.ErrNoRangeRead or a fetch error;
// the caller then reads the segment whole (which reads around bad shards).
func (f *FS) readFrames(ctx context.Context, ref storage.SegmentRef, in int64, dest []byte) (int, error) {
	total := 0
	for total < len(dest) && in < int64(ref.PlainLen) {
		j := int(in / storage.FrameSize)
		data, err := f.frames.get(ctx, frameKey{ref.ID, j}, func(ctx context.Context) ([]byte, error) {
			r := f.readers.get(ref.ID)
			if r == nil {
				var err error
				if r, err = f.st.OpenSegment(ctx, ref); err != nil {
					return nil, err
				}
				f.readers.put(ref.ID, r)
			}
			return r.ReadFrame(ctx, j, nil)
		})
		if err != nil {
			return total, err
		}
		c := copy(dest[total:], data[in-int64(j)*storage.FrameSize:])
		total += c
		in += int64(c)
	}
	return total, nil
}

// partialFailed reports whether err from readFrames should fall back to a
// whole-segment read (anything but the reader giving up).
func partialFailed(ctx context.Context, err error) bool {
	return err != nil && ctx.Err() == nil && !errors.Is(err, context.Canceled)
}
