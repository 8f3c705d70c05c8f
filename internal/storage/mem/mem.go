// Package mem is an in-memory storage.Backend for tests: objects live in a
// map, so everything is lost with the process. It follows the same contract
// as every backend and passes the same conformance suite.
package mem

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/zerogrid/zerogrid/internal/storage"
)

// Backend is an in-memory backend. The zero value is not usable; use New.
type Backend struct {
	id, domain string

	mu       sync.RWMutex
	objects  map[string][]byte
	used     int64
	capacity int64 // 0: unlimited
}

var _ storage.Backend = (*Backend)(nil)

// New returns an empty backend with the given id and failure domain.
func New(id, domain string) *Backend {
	return &Backend{id: id, domain: domain, objects: make(map[string][]byte)}
}

// SetCapacity limits the total size of stored objects; a Put that would
// exceed it fails with storage.ErrFull. Zero removes the limit.
func (b *Backend) SetCapacity(bytes int64) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.capacity = bytes
}

// ID returns the backend's id.
func (b *Backend) ID() string { return b.id }

// Domain returns the backend's failure domain.
func (b *Backend) Domain() string { return b.domain }

func check(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return storage.ValidName(name)
}

// Put stores a copy of data under name.
func (b *Backend) Put(ctx context.Context, name string, data []byte) error {
	if err := check(ctx, name); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	used := b.used - int64(len(b.objects[name])) + int64(len(data))
	if b.capacity > 0 && used > b.capacity {
		return fmt.Errorf("mem %s: put %s (%d bytes): %w", b.id, name, len(data), storage.ErrFull)
	}
	b.objects[name] = append([]byte(nil), data...)
	b.used = used
	return nil
}

// Get returns a copy of the requested range.
func (b *Backend) Get(ctx context.Context, name string, off, length int64) ([]byte, error) {
	if err := check(ctx, name); err != nil {
		return nil, err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	obj, ok := b.objects[name]
	if !ok {
		return nil, fmt.Errorf("mem %s: get %s: %w", b.id, name, storage.ErrNotFound)
	}
	size := int64(len(obj))
	if length < 0 && off >= 0 && off <= size {
		length = size - off
	}
	if off < 0 || length < 0 || off > size || length > size-off {
		return nil, fmt.Errorf("mem %s: get %s [%d, +%d) of %d bytes: %w", b.id, name, off, length, size, storage.ErrRange)
	}
	return append([]byte(nil), obj[off:off+length]...), nil
}

// Stat returns the object's size.
func (b *Backend) Stat(ctx context.Context, name string) (storage.Info, error) {
	if err := check(ctx, name); err != nil {
		return storage.Info{}, err
	}
	b.mu.RLock()
	defer b.mu.RUnlock()
	obj, ok := b.objects[name]
	if !ok {
		return storage.Info{}, fmt.Errorf("mem %s: stat %s: %w", b.id, name, storage.ErrNotFound)
	}
	return storage.Info{Name: name, Size: int64(len(obj))}, nil
}

// Delete removes the object if it exists.
func (b *Backend) Delete(ctx context.Context, name string) error {
	if err := check(ctx, name); err != nil {
		return err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	b.used -= int64(len(b.objects[name]))
	delete(b.objects, name)
	return nil
}

// List calls fn for each object whose name has the prefix. It works on a
// snapshot of the names, so fn may call back into the backend.
func (b *Backend) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	b.mu.RLock()
	var infos []storage.Info
	for name, obj := range b.objects {
		if strings.HasPrefix(name, prefix) {
			infos = append(infos, storage.Info{Name: name, Size: int64(len(obj))})
		}
	}
	b.mu.RUnlock()
	for _, info := range infos {
		if err := ctx.Err(); err != nil {
			return err
		}
		if err := fn(info); err != nil {
			return err
		}
	}
	return nil
}
