package fusefs

import (
	"context"
	"sync"

	"github.com/zerogrid/zerogrid/internal/storage"
)

// segCache holds up to max decoded segments, least recently used evicted
// first. Loads of the same segment are shared. A failed load is not
// cached, so the next read tries again.
type segCache struct {
	mu    sync.Mutex
	max   int
	items map[storage.SegmentID]*segItem
	tick  uint64
}

type segItem struct {
	done chan struct{}
	data []byte
	err  error
	used uint64
}

func newSegCache(max int) *segCache {
	return &segCache{max: max, items: map[storage.SegmentID]*segItem{}}
}

// get returns the plaintext of segment id, loading it with load on a miss.
func (c *segCache) get(ctx context.Context, id storage.SegmentID, load func(context.Context) ([]byte, error)) ([]byte, error) {
	it, fresh := c.item(id)
	if fresh {
		c.fill(ctx, id, it, load)
	}
	select {
	case <-it.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return it.data, it.err
}

// prefetch starts loading segment id in the background unless it is cached
// or loading.
func (c *segCache) prefetch(id storage.SegmentID, load func(context.Context) ([]byte, error)) {
	it, fresh := c.item(id)
	if fresh {
		go c.fill(context.Background(), id, it, load)
	}
}

func (c *segCache) item(id storage.SegmentID) (*segItem, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tick++
	if it, ok := c.items[id]; ok {
		it.used = c.tick
		return it, false
	}
	it := &segItem{done: make(chan struct{}), used: c.tick}
	c.items[id] = it
	for len(c.items) > c.max {
		var oldest storage.SegmentID
		first := true
		for k, v := range c.items {
			if k != id && (first || v.used < c.items[oldest].used) {
				oldest, first = k, false
			}
		}
		if first {
			break
		}
		delete(c.items, oldest)
	}
	return it, true
}

func (c *segCache) fill(ctx context.Context, id storage.SegmentID, it *segItem, load func(context.Context) ([]byte, error)) {
	it.data, it.err = load(context.WithoutCancel(ctx))
	if it.err != nil {
		c.mu.Lock()
		if c.items[id] == it {
			delete(c.items, id)
		}
		c.mu.Unlock()
	}
	close(it.done)
}

// drop forgets every cached segment (after the store changed under it,
// segments are immutable, so this only frees memory).
func (c *segCache) drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.items)
}
