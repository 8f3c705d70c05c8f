// Package pack is a storage.Backend that packs objects into append-only
// data files in one local directory, using the engine of `zgridd zdb`
// (internal/zdb) in process: checksummed records, an index rebuilt from the
// data files if it is lost, a torn tail after a crash truncated, and dead
// records compacted away in the background.
//
// Compared with the dir backend (one file per object) a put creates no
// file: it appends one record and fsyncs the data file, which is what makes
// it faster on filesystems where creating and syncing small files costs
// more than writing them. The price is that objects are not files an
// operator can look at; `redis-cli` cannot reach them either, as nothing
// listens.
//
// Durability: Put returns after the record is fsynced, so an acknowledged
// put survives a crash; a put cut by a crash is either wholly there or
// absent (the record's checksum decides).
package pack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"syscall"
	"time"

	"github.com/zerogrid/zerogrid/internal/storage"
	"github.com/zerogrid/zerogrid/internal/zdb"
)

// namespace is the zdb namespace objects live in.
const namespace = "objects"

// MaxObjectSize is the largest object (a zdb value).
const MaxObjectSize = zdb.MaxValueSize

// compactEvery is how often dead records are looked for.
const compactEvery = 10 * time.Minute

// Backend stores objects in packed data files.
type Backend struct {
	id, domain, root string
	st               *zdb.Store
	ns               *zdb.Namespace
}

var _ storage.Backend = (*Backend)(nil)

// Open opens (creating if needed) the packed store in root. It holds an
// exclusive lock on root until Close. A nil logger discards.
func Open(id, domain, root string, log *slog.Logger) (*Backend, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if err := checkNotFiles(root); err != nil {
		return nil, fmt.Errorf("pack backend %s: %w", id, err)
	}
	st, err := zdb.Open(zdb.Options{Dir: root, Logger: log.With("backend", id), Sync: zdb.SyncBatch, CompactInterval: compactEvery})
	if err != nil {
		return nil, fmt.Errorf("pack backend %s: open %s: %w", id, root, mapErr(err))
	}
	ns, err := st.Namespace(namespace)
	if errors.Is(err, zdb.ErrNamespaceNotFound) {
		ns, err = st.Create(namespace)
	}
	if err != nil {
		st.Close()
		return nil, fmt.Errorf("pack backend %s: %w", id, mapErr(err))
	}
	return &Backend{id: id, domain: domain, root: root, st: st, ns: ns}, nil
}

// Close releases the directory.
func (b *Backend) Close() error { return b.st.Close() }

// ID returns the backend's id.
func (b *Backend) ID() string { return b.id }

// Domain returns the backend's failure domain.
func (b *Backend) Domain() string { return b.domain }

func (b *Backend) check(ctx context.Context, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	return storage.ValidName(name)
}

// Put appends the object and fsyncs before it returns.
func (b *Backend) Put(ctx context.Context, name string, data []byte) error {
	if err := b.check(ctx, name); err != nil {
		return err
	}
	if len(data) > MaxObjectSize {
		return fmt.Errorf("pack backend %s: put %s: %d bytes, over the %d-byte object limit: %w", b.id, name, len(data), MaxObjectSize, storage.ErrFull)
	}
	if _, _, err := b.ns.Set([]byte(name), data); err != nil {
		return fmt.Errorf("pack backend %s: put %s: %w", b.id, name, mapErr(err))
	}
	if err := b.ns.Sync(); err != nil {
		return fmt.Errorf("pack backend %s: put %s: sync: %w", b.id, name, mapErr(err))
	}
	return nil
}

// Get returns a range of the object.
func (b *Backend) Get(ctx context.Context, name string, off, length int64) ([]byte, error) {
	if err := b.check(ctx, name); err != nil {
		return nil, err
	}
	v, found, err := b.ns.Get([]byte(name))
	switch {
	case err != nil:
		return nil, fmt.Errorf("pack backend %s: get %s: %w", b.id, name, mapErr(err))
	case !found:
		return nil, fmt.Errorf("pack backend %s: get %s: %w", b.id, name, storage.ErrNotFound)
	}
	size := int64(len(v))
	end := size
	if length >= 0 {
		end = off + length
	}
	if off < 0 || off > size || length > size-off || end > size {
		return nil, fmt.Errorf("pack backend %s: get %s: bytes %d+%d of %d: %w", b.id, name, off, length, size, storage.ErrRange)
	}
	return v[off:end], nil
}

// Stat returns the object's size without reading it.
func (b *Backend) Stat(ctx context.Context, name string) (storage.Info, error) {
	if err := b.check(ctx, name); err != nil {
		return storage.Info{}, err
	}
	e, found, err := b.ns.Stat([]byte(name))
	switch {
	case err != nil:
		return storage.Info{}, fmt.Errorf("pack backend %s: stat %s: %w", b.id, name, mapErr(err))
	case !found:
		return storage.Info{}, fmt.Errorf("pack backend %s: stat %s: %w", b.id, name, storage.ErrNotFound)
	}
	return storage.Info{Name: name, Size: int64(e.Size)}, nil
}

// Delete removes the object (a tombstone; compaction frees the space).
func (b *Backend) Delete(ctx context.Context, name string) error {
	if err := b.check(ctx, name); err != nil {
		return err
	}
	err := b.ns.Delete([]byte(name))
	if err != nil && !errors.Is(err, zdb.ErrKeyNotFound) {
		return fmt.Errorf("pack backend %s: delete %s: %w", b.id, name, mapErr(err))
	}
	return nil
}

// List calls fn for every object whose name starts with prefix.
func (b *Backend) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	var after uint64
	for {
		if err := ctx.Err(); err != nil {
			return err
		}
		page, err := b.ns.Scan(after, 1000)
		if err != nil && !errors.Is(err, zdb.ErrNoMoreData) {
			return fmt.Errorf("pack backend %s: list: %w", b.id, mapErr(err))
		}
		if len(page) == 0 {
			return nil
		}
		for _, e := range page {
			if name := string(e.Key); len(name) >= len(prefix) && name[:len(prefix)] == prefix {
				if err := fn(storage.Info{Name: name, Size: int64(e.Size)}); err != nil {
					return err
				}
			}
		}
		after = page[len(page)-1].LSN
	}
}

// ErrOtherLayout: the directory holds a backend of the files layout.
var ErrOtherLayout = errors.New("the directory holds one file per shard (layout files), not a packed store: set layout: files, or use an empty directory")

// checkNotFiles refuses a directory that holds shard files, so a config
// that names the wrong layout does not make every shard look lost.
func checkNotFiles(root string) error {
	entries, err := os.ReadDir(root)
	if err != nil {
		return nil // missing: zdb.Open creates it; unreadable: zdb.Open says why
	}
	for _, e := range entries {
		if e.Type().IsRegular() && storage.ValidName(e.Name()) == nil {
			return fmt.Errorf("%s: %w", root, ErrOtherLayout)
		}
	}
	return nil
}

func mapErr(err error) error {
	switch {
	case errors.Is(err, zdb.ErrNamespaceFull), errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("%w: %w", storage.ErrFull, err)
	default:
		return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	}
}
