// Package dir is a storage.Backend that keeps each object as a file in one
// local directory.
//
// A Put writes a hidden temporary file in the same directory, syncs it,
// renames it over the final name and syncs the directory, so after a crash
// an object is either wholly there (old or new content) or absent, never
// torn. Temporary files start with a dot, which ValidName forbids, so they
// never collide with an object and List never shows them; one left by a
// crash is garbage that a scrub may delete.
package dir

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/zerogrid/zerogrid/internal/atomicfile"
	"github.com/zerogrid/zerogrid/internal/storage"
)

// packedMarker is a file only a packed store (internal/storage/pack) has.
const packedMarker = "objects/namespace.json"

// ErrOtherLayout: the directory holds a packed store.
var ErrOtherLayout = errors.New("the directory holds a packed store (layout packed), not one file per shard: set layout: packed, or use an empty directory")

// Backend stores objects as files in a directory.
type Backend struct {
	id, domain, root string
	log              *slog.Logger
}

var _ storage.Backend = (*Backend)(nil)

// Open returns a backend over the directory root, creating it (mode 0700)
// if it does not exist. A nil logger discards.
func Open(id, domain, root string, log *slog.Logger) (*Backend, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("dir backend %s: %w", id, err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("dir backend %s: create %s: %w", id, abs, mapErr(err))
	}
	if _, err := os.Stat(filepath.Join(abs, packedMarker)); err == nil {
		return nil, fmt.Errorf("dir backend %s: %s: %w", id, abs, ErrOtherLayout)
	}
	return &Backend{id: id, domain: domain, root: abs, log: log.With("backend", id)}, nil
}

// ID returns the backend's id.
func (b *Backend) ID() string { return b.id }

// Domain returns the backend's failure domain.
func (b *Backend) Domain() string { return b.domain }

// Root returns the directory the backend writes to.
func (b *Backend) Root() string { return b.root }

func (b *Backend) path(ctx context.Context, name string) (string, error) {
	if err := ctx.Err(); err != nil {
		return "", err
	}
	if err := storage.ValidName(name); err != nil {
		return "", err
	}
	return filepath.Join(b.root, name), nil
}

// Put writes data to a temporary file, syncs it and renames it into place.
func (b *Backend) Put(ctx context.Context, name string, data []byte) error {
	p, err := b.path(ctx, name)
	if err != nil {
		return err
	}
	if err := b.writeAtomic(p, name, data); err != nil {
		return fmt.Errorf("dir backend %s: put %s: %w", b.id, name, b.rootErr(err))
	}
	return nil
}

func (b *Backend) writeAtomic(p, _ string, data []byte) error {
	return atomicfile.WriteFile(p, data, 0o600)
}

// Get reads the requested range of the file.
func (b *Backend) Get(ctx context.Context, name string, off, length int64) ([]byte, error) {
	p, err := b.path(ctx, name)
	if err != nil {
		return nil, err
	}
	data, err := readRange(p, off, length)
	if err != nil {
		return nil, fmt.Errorf("dir backend %s: get %s: %w", b.id, name, b.rootErr(err))
	}
	return data, nil
}

func readRange(p string, off, length int64) ([]byte, error) {
	f, err := os.Open(p)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	size := st.Size()
	if length < 0 && off >= 0 && off <= size {
		length = size - off
	}
	if off < 0 || length < 0 || off > size || length > size-off {
		return nil, fmt.Errorf("[%d, +%d) of %d bytes: %w", off, length, size, storage.ErrRange)
	}
	buf := make([]byte, length)
	if _, err := f.ReadAt(buf, off); err != nil && !(errors.Is(err, io.EOF) && length == 0) {
		return nil, err
	}
	return buf, nil
}

// Stat returns the file's size.
func (b *Backend) Stat(ctx context.Context, name string) (storage.Info, error) {
	p, err := b.path(ctx, name)
	if err != nil {
		return storage.Info{}, err
	}
	st, err := os.Stat(p)
	if err != nil {
		return storage.Info{}, fmt.Errorf("dir backend %s: stat %s: %w", b.id, name, b.rootErr(err))
	}
	if !st.Mode().IsRegular() {
		return storage.Info{}, fmt.Errorf("dir backend %s: stat %s: not a regular file: %w", b.id, name, storage.ErrNotFound)
	}
	return storage.Info{Name: name, Size: st.Size()}, nil
}

// Delete removes the file and syncs the directory.
func (b *Backend) Delete(ctx context.Context, name string) error {
	p, err := b.path(ctx, name)
	if err != nil {
		return err
	}
	err = os.Remove(p)
	if errors.Is(err, fs.ErrNotExist) {
		if _, rootErr := os.Stat(b.root); rootErr != nil {
			return fmt.Errorf("dir backend %s: delete %s: %w", b.id, name, b.rootErr(rootErr))
		}
		return nil
	}
	if err == nil {
		err = atomicfile.SyncDir(b.root)
	}
	if err != nil {
		return fmt.Errorf("dir backend %s: delete %s: %w", b.id, name, b.rootErr(err))
	}
	return nil
}

// List calls fn for every regular file with a valid name and the prefix.
func (b *Backend) List(ctx context.Context, prefix string, fn func(storage.Info) error) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	entries, err := os.ReadDir(b.root)
	if err != nil {
		return fmt.Errorf("dir backend %s: list: %w", b.id, b.rootErr(err))
	}
	for _, e := range entries {
		if err := ctx.Err(); err != nil {
			return err
		}
		name := e.Name()
		if !strings.HasPrefix(name, prefix) || storage.ValidName(name) != nil || !e.Type().IsRegular() {
			continue
		}
		info, err := e.Info()
		if errors.Is(err, fs.ErrNotExist) {
			continue // deleted since ReadDir
		}
		if err != nil {
			return fmt.Errorf("dir backend %s: list: %w", b.id, mapErr(err))
		}
		if err := fn(storage.Info{Name: name, Size: info.Size()}); err != nil {
			return err
		}
	}
	return nil
}

// rootErr maps err to a storage sentinel. A missing file is ErrNotFound,
// unless the root directory itself is gone (an unmounted disk), which makes
// the whole backend unavailable.
func (b *Backend) rootErr(err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		if _, statErr := os.Stat(b.root); statErr != nil {
			return fmt.Errorf("root %s: %w: %w", b.root, storage.ErrUnavailable, statErr)
		}
	}
	return mapErr(err)
}

// mapErr wraps err with the storage sentinel it corresponds to.
func mapErr(err error) error {
	switch {
	case errors.Is(err, storage.ErrRange):
		return err
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("%w: %w", storage.ErrNotFound, err)
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("%w: %w", storage.ErrFull, err)
	default:
		return fmt.Errorf("%w: %w", storage.ErrUnavailable, err)
	}
}
