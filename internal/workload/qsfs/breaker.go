package qsfs

import (
	"context"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/zerogrid/zerogrid/internal/storage"
)

// breaker is a backend that fails at once, with storage.ErrUnavailable,
// while the last probe of it failed: a node that is gone costs one probe
// timeout per check, not a dial timeout on every read, repair and commit.
// It is safe for concurrent use.
type breaker struct {
	storage.Backend
	down atomic.Bool
}

func (b *breaker) open() error {
	if b.down.Load() {
		return fmt.Errorf("backend %s: %w (it did not answer the last probe)", b.ID(), storage.ErrUnavailable)
	}
	return nil
}

func (b *breaker) Put(ctx context.Context, name string, data []byte) error {
	if err := b.open(); err != nil {
		return err
	}
	return b.Backend.Put(ctx, name, data)
}

func (b *breaker) Get(ctx context.Context, name string, off, length int64) ([]byte, error) {
	if err := b.open(); err != nil {
		return nil, err
	}
	return b.Backend.Get(ctx, name, off, length)
}

func (b *breaker) Stat(ctx context.Context, name string) (storage.Info, error) {
	if err := b.open(); err != nil {
		return storage.Info{}, err
	}
	return b.Backend.Stat(ctx, name)
}

func (b *breaker) Delete(ctx context.Context, name string) error {
	if err := b.open(); err != nil {
		return err
	}
	return b.Backend.Delete(ctx, name)
}

func (b *breaker) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	if err := b.open(); err != nil {
		return err
	}
	return b.Backend.List(ctx, prefix, fn)
}

// Close closes the backend when it holds resources.
func (b *breaker) Close() error {
	if c, ok := b.Backend.(io.Closer); ok {
		return c.Close()
	}
	return nil
}
