package catalog

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/zerogrid/zerogrid/internal/storage"
)

// The catalog is flat: names may contain '/'. A directory exists when it
// has an explicit entry (Entry.Dir, catalog version 2), so that an empty
// directory persists, or implicitly when some entry's name starts with its
// name and a slash (files put as "a/b/c" make "a" and "a/b" directories).
// The root, "", is always a directory. Tree operations keep a name from
// being both a file and a directory.

// Errors of tree operations.
var (
	// ErrIsDir: the name is a directory where a file is needed.
	ErrIsDir = errors.New("is a directory")
	// ErrNotDir: the name (or one of its parents) is a file where a
	// directory is needed.
	ErrNotDir = errors.New("not a directory")
	// ErrNotEmpty: the directory still holds entries.
	ErrNotEmpty = errors.New("directory not empty")
	// ErrNameTaken: a file or directory of that name already exists.
	ErrNameTaken = errors.New("a file or directory of that name exists")
	// ErrRenameInto: a directory cannot be moved inside itself.
	ErrRenameInto = errors.New("cannot move a directory inside itself")
)

// version is the format version encodeCatalog writes: the lowest that
// holds every entry (1; 2 with a directory entry; 3 with a version 3 field).
func (c *Catalog) version() uint16 {
	v := uint16(catalogVersion)
	for i := range c.entries {
		if c.entries[i].v3() {
			return catalogVersionPOSIX
		}
		if c.entries[i].Dir {
			v = catalogVersionDirs
		}
	}
	return v
}

// IsDir reports whether name is a directory, explicit or implicit.
func (c *Catalog) IsDir(name string) bool {
	if name == "" {
		return true
	}
	if e, ok := c.Lookup(name); ok {
		return e.Dir
	}
	return c.hasChildren(name)
}

// hasChildren reports whether any entry lies below directory name.
func (c *Catalog) hasChildren(name string) bool {
	prefix := name + "/"
	if name == "" {
		return len(c.entries) > 0
	}
	i, _ := slices.BinarySearchFunc(c.entries, prefix, func(e Entry, n string) int { return strings.Compare(e.Name, n) })
	return i < len(c.entries) && strings.HasPrefix(c.entries[i].Name, prefix)
}

// Children returns the direct children of directory dir ("" is the root):
// files and explicit directories as their entries, implicit directories as
// entries with Dir set and only the name filled in. Sorted by name.
func (c *Catalog) Children(dir string) []Entry {
	prefix := ""
	if dir != "" {
		prefix = dir + "/"
	}
	var out []Entry
	at := map[string]int{} // name → index in out
	i, _ := slices.BinarySearchFunc(c.entries, prefix, func(e Entry, n string) int { return strings.Compare(e.Name, n) })
	for ; i < len(c.entries) && strings.HasPrefix(c.entries[i].Name, prefix); i++ {
		e := c.entries[i]
		rest := e.Name[len(prefix):]
		if j := strings.IndexByte(rest, '/'); j >= 0 {
			e = Entry{Name: prefix + rest[:j], Dir: true, Mode: 0o755}
		}
		if k, ok := at[e.Name]; ok {
			if e.Name == c.entries[i].Name { // the explicit entry wins
				out[k] = e
			}
			continue
		}
		at[e.Name] = len(out)
		out = append(out, e)
	}
	slices.SortFunc(out, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return out
}

// checkParent fails unless every ancestor of name is a directory (or
// absent, for the implicit parents of a flat put) and name's own parent
// exists when mustExist.
func (c *Catalog) checkParent(name string, mustExist bool) error {
	for p := parentOf(name); p != ""; p = parentOf(p) {
		if e, ok := c.Lookup(p); ok && !e.Dir {
			return fmt.Errorf("%w: %q", ErrNotDir, p)
		}
	}
	if p := parentOf(name); mustExist && !c.IsDir(p) {
		return fmt.Errorf("%w: directory %q", ErrNotFound, p)
	}
	return nil
}

func parentOf(name string) string {
	if i := strings.LastIndexByte(name, '/'); i >= 0 {
		return name[:i]
	}
	return ""
}

// without returns a copy of c without the entry of name.
func (c *Catalog) without(name string) (*Catalog, Entry, bool) {
	i, ok := slices.BinarySearchFunc(c.entries, name, func(e Entry, n string) int { return strings.Compare(e.Name, n) })
	if !ok {
		return c, Entry{}, false
	}
	old := c.entries[i]
	return &Catalog{entries: slices.Delete(slices.Clone(c.entries), i, i+1)}, old, true
}

// putChecks is what Put requires of its name: not a directory, and no
// parent that is a file.
func (c *Catalog) putChecks(name string) error {
	if c.IsDir(name) {
		return fmt.Errorf("%w: %q", ErrIsDir, name)
	}
	return c.checkParent(name, false)
}

// renamed moves the file or directory old to new. It returns the new
// catalog and the file entries it replaced (whose segments are garbage
// once it commits).
func (c *Catalog) renamed(old, nw string) (*Catalog, []Entry, error) {
	if old == nw {
		if _, ok := c.Lookup(old); !ok && !c.IsDir(old) {
			return nil, nil, fmt.Errorf("%w: %q", ErrNotFound, old)
		}
		return c, nil, nil
	}
	if err := c.checkParent(nw, true); err != nil {
		return nil, nil, err
	}
	if !c.IsDir(old) {
		return c.renamedFile(old, nw)
	}
	if strings.HasPrefix(nw, old+"/") {
		return nil, nil, fmt.Errorf("%w: %q into %q", ErrRenameInto, old, nw)
	}
	if e, ok := c.Lookup(nw); ok && !e.Dir {
		return nil, nil, fmt.Errorf("%w: %q", ErrNotDir, nw)
	}
	if c.hasChildren(nw) {
		return nil, nil, fmt.Errorf("%w: %q", ErrNotEmpty, nw)
	}
	next, _, _ := c.without(nw)
	entries := slices.Clone(next.entries)
	for i := range entries {
		switch n := entries[i].Name; {
		case n == old:
			entries[i].Name = nw
		case strings.HasPrefix(n, old+"/"):
			entries[i].Name = nw + n[len(old):]
		}
	}
	if _, ok := c.Lookup(old); !ok { // implicit: keep it a directory after the move
		entries = append(entries, Entry{Name: nw, Dir: true, Mode: 0o755, MTime: time.Now().UnixNano()})
	}
	for i := range entries {
		if err := ValidName(entries[i].Name); err != nil {
			return nil, nil, err
		}
	}
	slices.SortFunc(entries, func(a, b Entry) int { return strings.Compare(a.Name, b.Name) })
	return &Catalog{entries: entries}, nil, nil
}

func (c *Catalog) renamedFile(old, nw string) (*Catalog, []Entry, error) {
	e, ok := c.Lookup(old)
	if !ok {
		return nil, nil, fmt.Errorf("%w: %q", ErrNotFound, old)
	}
	if c.IsDir(nw) {
		return nil, nil, fmt.Errorf("%w: %q", ErrIsDir, nw)
	}
	next, _, _ := c.without(old)
	e.Name = nw
	next, replaced := next.with(e)
	if replaced != nil {
		return next, []Entry{*replaced}, nil
	}
	return next, nil, nil
}

// Remove deletes the file name from the catalog and, once the new root is
// committed, its segments. A directory is ErrIsDir (use Rmdir).
func (s *Store) Remove(ctx context.Context, name string) error {
	var gone Entry
	_, err := s.update(ctx, func(c *Catalog) (*Catalog, error) {
		next, e, ok := c.without(name)
		switch {
		case !ok && c.IsDir(name):
			return nil, fmt.Errorf("%w: %q", ErrIsDir, name)
		case !ok:
			return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
		case e.Dir:
			return nil, fmt.Errorf("%w: %q", ErrIsDir, name)
		}
		gone = e
		return next.touchParent(name, s.lk.now().UnixNano()), nil
	})
	if err != nil {
		return fmt.Errorf("remove %s: %w", name, err)
	}
	s.deleteSegments(ctx, gone.Segments)
	return nil
}

// Mkdir adds an explicit, empty directory owned by uid 0. Its parent
// must be a directory.
func (s *Store) Mkdir(ctx context.Context, name string, mode uint32, mtime time.Time) error {
	return s.MkdirMeta(ctx, name, Meta{Mode: mode, MTime: mtime})
}

// MkdirMeta adds an explicit, empty directory with m's mode, mtime and
// owner, and sets its parent's mtime and ctime. Its parent must be a
// directory.
func (s *Store) MkdirMeta(ctx context.Context, name string, m Meta) error {
	mode, mtime := m.Mode, m.MTime
	if err := ValidName(name); err != nil {
		return err
	}
	_, err := s.update(ctx, func(c *Catalog) (*Catalog, error) {
		if _, ok := c.Lookup(name); ok || c.IsDir(name) {
			return nil, fmt.Errorf("%w: %q", ErrNameTaken, name)
		}
		if err := c.checkParent(name, true); err != nil {
			return nil, err
		}
		now := s.lk.now().UnixNano()
		next, _ := c.with(Entry{Name: name, Dir: true, Mode: mode & 0o7777, MTime: mtime.UnixNano(), CTime: now, UID: m.UID, GID: m.GID})
		return next.touchParent(name, now), nil
	})
	if err != nil {
		return fmt.Errorf("mkdir %s: %w", name, err)
	}
	return nil
}

// Rmdir removes an empty directory.
func (s *Store) Rmdir(ctx context.Context, name string) error {
	_, err := s.update(ctx, func(c *Catalog) (*Catalog, error) {
		e, ok := c.Lookup(name)
		switch {
		case ok && !e.Dir:
			return nil, fmt.Errorf("%w: %q", ErrNotDir, name)
		case c.hasChildren(name):
			return nil, fmt.Errorf("%w: %q", ErrNotEmpty, name)
		case !ok:
			return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
		}
		next, _, _ := c.without(name)
		return next.touchParent(name, s.lk.now().UnixNano()), nil
	})
	if err != nil {
		return fmt.Errorf("rmdir %s: %w", name, err)
	}
	return nil
}

// Rename moves the file or directory old to new (every entry below a
// directory moves with it). A file replaces a file of the new name, whose
// segments are deleted after the commit; a directory replaces only an
// empty directory.
func (s *Store) Rename(ctx context.Context, old, nw string) error {
	if err := ValidName(nw); err != nil {
		return err
	}
	var replaced []Entry
	_, err := s.update(ctx, func(c *Catalog) (*Catalog, error) {
		next, r, err := c.renamed(old, nw)
		replaced = r
		if err != nil || old == nw {
			return next, err
		}
		now := s.lk.now().UnixNano()
		if e, ok := next.Lookup(nw); ok {
			e.CTime = now
			next, _ = next.with(e)
		}
		return next.touchParent(old, now).touchParent(nw, now), nil
	})
	if err != nil {
		return fmt.Errorf("rename %s to %s: %w", old, nw, err)
	}
	for _, e := range replaced {
		s.deleteSegments(ctx, e.Segments)
	}
	return nil
}

// Children lists the direct children of directory dir of the current
// catalog (see Catalog.Children).
func (s *Store) Children(dir string) []Entry {
	s.lk.mu.Lock()
	defer s.lk.mu.Unlock()
	return s.cat.Children(dir)
}

// IsDir reports whether name is a directory of the current catalog.
func (s *Store) IsDir(name string) bool {
	s.lk.mu.Lock()
	defer s.lk.mu.Unlock()
	return s.cat.IsDir(name)
}

// ReadSegment returns the plaintext of one segment of a file entry, in dst
// if it is large enough: for random-access readers such as the mount.
func (s *Store) ReadSegment(ctx context.Context, ref storage.SegmentRef, dst []byte) ([]byte, error) {
	r, err := s.dec.DecodeSegment(ctx, ref, dst)
	return r.Data, err
}

// SegmentSize is the data segment size in bytes.
func (s *Store) SegmentSize() int { return s.data.Params().SegmentSize }

// OpenSegment prepares reads of single frames of one segment of a file
// entry (storage.Decoder.OpenSegment): for small random reads.
func (s *Store) OpenSegment(ctx context.Context, ref storage.SegmentRef) (*storage.SegmentReader, error) {
	return s.dec.OpenSegment(ctx, ref)
}
