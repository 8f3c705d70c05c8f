package zdbbackend

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/zerogrid/zerogrid/internal/storage"
	"github.com/zerogrid/zerogrid/internal/zdb"
)

// check validates name and the context before a call sends anything.
func (b *Backend) check(ctx context.Context, op, name string) error {
	if err := storage.ValidName(name); err != nil {
		return fmt.Errorf("zdb backend %s: %s: %w", b.cfg.ID, op, err)
	}
	if err := ctx.Err(); err != nil {
		return fmt.Errorf("zdb backend %s: %s %q: %w", b.cfg.ID, op, name, err)
	}
	return nil
}

// Put stores data under name with one SET, so readers see the old or the
// new value, and then FSYNC in the same round trip, so it is durable when
// Put returns. Objects over MaxObjectSize are refused with ErrTooLarge.
func (b *Backend) Put(ctx context.Context, name string, data []byte) error {
	if err := b.check(ctx, "put", name); err != nil {
		return err
	}
	if len(data) > MaxObjectSize {
		return fmt.Errorf("zdb backend %s: put %q: %d bytes: %w (%d bytes): %w",
			b.cfg.ID, name, len(data), ErrTooLarge, MaxObjectSize, storage.ErrFull)
	}
	// A nil reply to SET means the key already held this value: success.
	err := b.pipelineThenSync(ctx, func(err error) bool { return errors.Is(err, redis.Nil) }, "SET", name, data)
	if err != nil {
		return b.fail(ctx, "put", name, err)
	}
	return nil
}

// pipelineThenSync sends one write command and FSYNC in one round trip on
// one connection; FSYNC covers every write acknowledged on the namespace,
// so the write is durable when both succeed. ok says which replies of the
// write command count as success.
func (b *Backend) pipelineThenSync(ctx context.Context, ok func(error) bool, args ...any) error {
	var cmd, sync *redis.Cmd
	_, perr := b.rdb.Pipelined(ctx, func(p redis.Pipeliner) error {
		cmd = p.Do(ctx, args...)
		sync = p.Do(ctx, "FSYNC")
		return nil
	})
	if err := cmd.Err(); err != nil && !ok(err) {
		return err
	}
	if err := sync.Err(); err != nil {
		return fmt.Errorf("fsync: %w", err)
	}
	// A connection that could not be opened or authenticated fails the
	// pipeline without always reaching the commands.
	if perr != nil && !errors.Is(perr, cmd.Err()) {
		return perr
	}
	return nil
}

// Get reads the whole value and returns the requested range of a copy:
// zdb has no ranged read, and objects are at most MaxObjectSize.
func (b *Backend) Get(ctx context.Context, name string, off, length int64) ([]byte, error) {
	if err := b.check(ctx, "get", name); err != nil {
		return nil, err
	}
	v, err := b.rdb.Do(ctx, "GET", name).Text()
	if errors.Is(err, redis.Nil) {
		return nil, fmt.Errorf("zdb backend %s: get %q: %w", b.cfg.ID, name, storage.ErrNotFound)
	}
	if err != nil {
		return nil, b.fail(ctx, "get", name, err)
	}
	size := int64(len(v))
	end := size
	if length >= 0 {
		end = off + length
	}
	if off < 0 || off > size || length > size-off || end > size {
		return nil, fmt.Errorf("zdb backend %s: get %q: bytes %d+%d of %d: %w", b.cfg.ID, name, off, length, size, storage.ErrRange)
	}
	return []byte(v[off:end]), nil
}

// Stat returns the object's size (LENGTH; no value is transferred).
func (b *Backend) Stat(ctx context.Context, name string) (storage.Info, error) {
	if err := b.check(ctx, "stat", name); err != nil {
		return storage.Info{}, err
	}
	n, err := b.rdb.Do(ctx, "LENGTH", name).Int64()
	if errors.Is(err, redis.Nil) {
		return storage.Info{}, fmt.Errorf("zdb backend %s: stat %q: %w", b.cfg.ID, name, storage.ErrNotFound)
	}
	if err != nil {
		return storage.Info{}, b.fail(ctx, "stat", name, err)
	}
	return storage.Info{Name: name, Size: n}, nil
}

// Delete removes the object with DEL, then FSYNC, so a deleted object does
// not come back after a power loss. A missing object is not an error.
func (b *Backend) Delete(ctx context.Context, name string) error {
	if err := b.check(ctx, "delete", name); err != nil {
		return err
	}
	err := b.pipelineThenSync(ctx, func(err error) bool { return isReply(err, zdb.ErrKeyNotFound) }, "DEL", name)
	if err != nil {
		return b.fail(ctx, "delete", name, err)
	}
	return nil
}
