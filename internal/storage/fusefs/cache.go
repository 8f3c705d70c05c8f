package fusefs

import (
	"context"
	"sync"
)

// segCache holds up to max decoded segments (or frames, keyed by K), least recently used evicted
// first. Loads of the same segment are shared. A failed load is not
// cached, so the next read tries again.
//
// The cache owns its loads: they run under its context, not a reader's
// (a load is shared, so one reader giving up must not fail the others),
// and close cancels them and waits for the prefetch goroutines to end.
type segCache[K comparable] struct {
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup // prefetch goroutines

	mu     sync.Mutex
	max    int
	items  map[K]*segItem
	tick   uint64
	closed bool
}

type segItem struct {
	done chan struct{}
	data []byte
	err  error
	used uint64
}

func newSegCache[K comparable](max int) *segCache[K] {
	ctx, cancel := context.WithCancel(context.Background())
	return &segCache[K]{ctx: ctx, cancel: cancel, max: max, items: map[K]*segItem{}}
}

// close cancels every load and waits for the prefetch goroutines. Loads
// after close fail with context.Canceled; prefetch does nothing.
func (c *segCache[K]) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.cancel()
	c.wg.Wait()
}

// get returns the plaintext of segment id, loading it with load on a miss.
func (c *segCache[K]) get(ctx context.Context, id K, load func(context.Context) ([]byte, error)) ([]byte, error) {
	it, fresh := c.item(id)
	if fresh {
		c.fill(id, it, load)
	}
	select {
	case <-it.done:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	return it.data, it.err
}

// peek returns the data of id if it is loaded, without waiting or
// loading.
func (c *segCache[K]) peek(id K) ([]byte, bool) {
	c.mu.Lock()
	it, ok := c.items[id]
	c.mu.Unlock()
	if !ok {
		return nil, false
	}
	select {
	case <-it.done:
		return it.data, it.err == nil
	default:
		return nil, false
	}
}

// prefetch starts loading segment id in the background unless it is cached
// or loading, or the cache is closed.
func (c *segCache[K]) prefetch(id K, load func(context.Context) ([]byte, error)) {
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.wg.Add(1) // under mu, so close's Wait never races an Add
	c.mu.Unlock()
	it, fresh := c.item(id)
	if !fresh {
		c.wg.Done()
		return
	}
	go func() {
		defer c.wg.Done()
		c.fill(id, it, load)
	}()
}

func (c *segCache[K]) item(id K) (*segItem, bool) {
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
		var oldest K
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

func (c *segCache[K]) fill(id K, it *segItem, load func(context.Context) ([]byte, error)) {
	it.data, it.err = load(c.ctx)
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
func (c *segCache[K]) drop() {
	c.mu.Lock()
	defer c.mu.Unlock()
	clear(c.items)
}
