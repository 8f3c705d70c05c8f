package backendtest

import (
	"context"
	"fmt"
	"sync"

	"github.com/zerogrid/zerogrid/internal/storage"
)

// Faulty wraps a backend and injects failures, for tests of the layers
// above: a backend that is down, full, or hangs until its caller gives up.
// It is safe for concurrent use.
type Faulty struct {
	storage.Backend

	mu        sync.Mutex
	down      bool
	full      bool
	hangGet   bool
	hangPut   bool
	gets      int
	cancelled int
}

var _ storage.Backend = (*Faulty)(nil)

// NewFaulty wraps b; it behaves exactly like b until told otherwise.
func NewFaulty(b storage.Backend) *Faulty { return &Faulty{Backend: b} }

// SetDown makes every call fail with storage.ErrUnavailable (or not).
func (f *Faulty) SetDown(down bool) { f.set(func() { f.down = down }) }

// SetFull makes Put fail with storage.ErrFull (or not).
func (f *Faulty) SetFull(full bool) { f.set(func() { f.full = full }) }

// SetHang makes Get and/or Put block until their context ends.
func (f *Faulty) SetHang(get, put bool) { f.set(func() { f.hangGet, f.hangPut = get, put }) }

// Gets returns the number of Get calls so far.
func (f *Faulty) Gets() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.gets
}

// Cancelled returns how many hanging calls ended because their context
// did.
func (f *Faulty) Cancelled() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.cancelled
}

func (f *Faulty) set(fn func()) {
	f.mu.Lock()
	defer f.mu.Unlock()
	fn()
}

func (f *Faulty) state() (down, full, hangGet, hangPut bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.down, f.full, f.hangGet, f.hangPut
}

func (f *Faulty) hang(ctx context.Context) error {
	<-ctx.Done()
	f.set(func() { f.cancelled++ })
	return ctx.Err()
}

func (f *Faulty) unavailable(op, name string) error {
	return fmt.Errorf("faulty %s: %s %s: %w", f.ID(), op, name, storage.ErrUnavailable)
}

// Put fails, hangs or passes through.
func (f *Faulty) Put(ctx context.Context, name string, data []byte) error {
	down, full, _, hang := f.state()
	switch {
	case down:
		return f.unavailable("put", name)
	case full:
		return fmt.Errorf("faulty %s: put %s: %w", f.ID(), name, storage.ErrFull)
	case hang:
		return f.hang(ctx)
	}
	return f.Backend.Put(ctx, name, data)
}

// Get fails, hangs or passes through; it counts calls.
func (f *Faulty) Get(ctx context.Context, name string, off, length int64) ([]byte, error) {
	f.set(func() { f.gets++ })
	down, _, hang, _ := f.state()
	switch {
	case down:
		return nil, f.unavailable("get", name)
	case hang:
		return nil, f.hang(ctx)
	}
	return f.Backend.Get(ctx, name, off, length)
}

// Stat fails or passes through.
func (f *Faulty) Stat(ctx context.Context, name string) (storage.Info, error) {
	if down, _, _, _ := f.state(); down {
		return storage.Info{}, f.unavailable("stat", name)
	}
	return f.Backend.Stat(ctx, name)
}

// Delete fails or passes through.
func (f *Faulty) Delete(ctx context.Context, name string) error {
	if down, _, _, _ := f.state(); down {
		return f.unavailable("delete", name)
	}
	return f.Backend.Delete(ctx, name)
}

// List fails or passes through.
func (f *Faulty) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	if down, _, _, _ := f.state(); down {
		return f.unavailable("list", prefix)
	}
	return f.Backend.List(ctx, prefix, fn)
}
