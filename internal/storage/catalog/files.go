package catalog

import (
	"context"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/zerogrid/zerogrid/internal/atomicfile"
	"github.com/zerogrid/zerogrid/internal/storage"
)

// PutResult says what a Put stored.
type PutResult struct {
	Entry    Entry
	Replaced bool // an older file of that name was replaced
	// Missing counts shards that could not be stored: the file is readable,
	// with less redundancy until a repair.
	Missing int
}

// Meta is the metadata a put stores with a file.
type Meta struct {
	Mode     uint32    // permission bits (and setuid, setgid, sticky)
	MTime    time.Time // modification time
	UID, GID uint32    // owner
}

// Put stores r as name with mode and mtime, owned by uid 0 (see PutMeta).
func (s *Store) Put(ctx context.Context, name string, r io.Reader, mode uint32, mtime time.Time) (PutResult, error) {
	return s.PutMeta(ctx, name, r, Meta{Mode: mode, MTime: mtime})
}

// PutMeta streams r through the data encoder (memory bounded by the
// encoder's segments in flight, whatever the length) and commits a catalog
// with the new entry. A file of the same name is replaced, and its segments
// deleted once the new root is in place (or at the last release of a Hold
// on them). On failure nothing changes in the catalog and the segments
// written are removed (best effort). A new name changes its parent
// directory's mtime and ctime.
func (s *Store) PutMeta(ctx context.Context, name string, r io.Reader, m Meta) (PutResult, error) {
	if err := ValidName(name); err != nil {
		return PutResult{}, err
	}
	e := Entry{Name: name, Mode: m.Mode & 0o7777, MTime: m.MTime.UnixNano(), UID: m.UID, GID: m.GID}
	missing := 0
	size, err := s.data.Encode(ctx, r, func(w storage.Written) error {
		e.Segments = append(e.Segments, w.Ref)
		missing += len(w.Faults)
		if len(e.Segments) > MaxSegments {
			return fmt.Errorf("%w: more than %d segments of %d bytes", ErrTooLarge, MaxSegments, s.data.Params().SegmentSize)
		}
		return nil
	})
	if err != nil {
		s.deleteSegments(ctx, e.Segments)
		return PutResult{}, fmt.Errorf("put %s: %w", name, err)
	}
	e.Size = size
	var old *Entry
	visible, err := s.update(ctx, func(c *Catalog) (*Catalog, error) {
		if err := c.putChecks(name); err != nil {
			return nil, err
		}
		now := s.lk.now().UnixNano()
		e.CTime = now
		var cat *Catalog
		cat, old = c.with(e)
		if old == nil {
			cat = cat.touchParent(name, now)
		}
		return cat, nil
	})
	if err != nil {
		if !visible {
			s.deleteSegments(ctx, e.Segments)
		}
		return PutResult{}, fmt.Errorf("put %s: %w", name, err)
	}
	if old != nil {
		s.deleteSegments(ctx, old.Segments)
	}
	return PutResult{Entry: e, Replaced: old != nil, Missing: missing}, nil
}

// Get streams the file name to w and returns its entry and the number of
// shards that were missing or corrupt on the way (read around, to repair).
func (s *Store) Get(ctx context.Context, name string, w io.Writer) (Entry, int, error) {
	e, ok := s.Lookup(name)
	if !ok {
		return Entry{}, 0, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	faults, err := s.dec.Decode(ctx, w, e.Segments)
	if err != nil {
		return e, len(faults), fmt.Errorf("get %s: %w", name, err)
	}
	return e, len(faults), nil
}

// PutFile puts the regular file src as name. progress, if not nil, is
// called with the bytes read so far.
func (s *Store) PutFile(ctx context.Context, src, name string, progress func(int64)) (PutResult, error) {
	f, err := os.Open(src)
	if err != nil {
		return PutResult{}, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return PutResult{}, err
	}
	if !fi.Mode().IsRegular() {
		return PutResult{}, fmt.Errorf("%s: not a regular file", src)
	}
	var r io.Reader = f
	if progress != nil {
		r = &countReader{r: f, fn: progress}
	}
	return s.Put(ctx, name, r, uint32(fi.Mode().Perm()), fi.ModTime())
}

// GetFile writes the file name to dst through a temporary file in dst's
// directory, synced and renamed into place, so dst is either untouched or
// complete. It sets the stored permissions and modification time.
func (s *Store) GetFile(ctx context.Context, name, dst string, progress func(int64)) (Entry, int, error) {
	if _, ok := s.Lookup(name); !ok {
		return Entry{}, 0, fmt.Errorf("%w: %q", ErrNotFound, name)
	}
	tmp, err := atomicfile.Create(dst, 0o600)
	if err != nil {
		return Entry{}, 0, err
	}
	defer tmp.Abort() // no-op after the commit
	var w io.Writer = tmp
	if progress != nil {
		w = &countWriter{w: tmp, fn: progress}
	}
	e, bad, err := s.Get(ctx, name, w)
	if err != nil {
		return e, bad, err
	}
	if err := finishFile(tmp, e); err != nil {
		return e, bad, err
	}
	return e, bad, nil
}

func finishFile(tmp *atomicfile.File, e Entry) error {
	if err := tmp.Chmod(os.FileMode(e.Mode & 0o777)); err != nil {
		return err
	}
	mt := time.Unix(0, e.MTime)
	if err := os.Chtimes(tmp.Name(), mt, mt); err != nil {
		return err
	}
	return tmp.Commit()
}

type countReader struct {
	r  io.Reader
	n  int64
	fn func(int64)
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	c.fn(c.n)
	return n, err
}

type countWriter struct {
	w  io.Writer
	n  int64
	fn func(int64)
}

func (c *countWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	c.fn(c.n)
	return n, err
}
