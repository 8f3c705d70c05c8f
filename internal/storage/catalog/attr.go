package catalog

import (
	"context"
	"fmt"
	"time"
)

// Attr is a change of attributes; nil fields are left as they are.
type Attr struct {
	Mode         *uint32 // permission bits (and setuid, setgid, sticky)
	UID, GID     *uint32
	ATime, MTime *time.Time
}

// SetAttr changes the attributes of the file, directory or symbolic link
// name and sets its ctime. An implicit directory becomes an explicit one.
// It returns the entry as committed.
func (s *Store) SetAttr(ctx context.Context, name string, a Attr) (Entry, error) {
	var out Entry
	_, err := s.update(ctx, func(c *Catalog) (*Catalog, error) {
		e, ok := c.Lookup(name)
		if !ok {
			if name == "" || !c.IsDir(name) {
				return nil, fmt.Errorf("%w: %q", ErrNotFound, name)
			}
			e = Entry{Name: name, Dir: true, Mode: 0o755, MTime: s.lk.now().UnixNano()}
		}
		e.Apply(a, s.lk.now())
		out = e
		next, _ := c.with(e)
		return next, nil
	})
	if err != nil {
		return Entry{}, fmt.Errorf("set attributes of %s: %w", name, err)
	}
	return out, nil
}

// Apply sets the attributes a names, and the ctime to now.
func (e *Entry) Apply(a Attr, now time.Time) {
	if a.Mode != nil {
		e.Mode = *a.Mode & 0o7777
	}
	if a.UID != nil {
		e.UID = *a.UID
	}
	if a.GID != nil {
		e.GID = *a.GID
	}
	if a.MTime != nil {
		e.MTime = a.MTime.UnixNano()
	}
	if a.ATime != nil {
		e.ATime = a.ATime.UnixNano()
	}
	e.CTime = now.UnixNano()
}

// Symlink adds name as a symbolic link to target, owned by uid and gid.
// Its parent must be a directory; the name must be free.
func (s *Store) Symlink(ctx context.Context, name, target string, uid, gid uint32) (Entry, error) {
	if err := ValidName(name); err != nil {
		return Entry{}, err
	}
	if err := validLink(target); err != nil {
		return Entry{}, err
	}
	var out Entry
	_, err := s.update(ctx, func(c *Catalog) (*Catalog, error) {
		if _, ok := c.Lookup(name); ok || c.IsDir(name) {
			return nil, fmt.Errorf("%w: %q", ErrNameTaken, name)
		}
		if err := c.checkParent(name, true); err != nil {
			return nil, err
		}
		now := s.lk.now().UnixNano()
		out = Entry{Name: name, Mode: 0o777, MTime: now, CTime: now, UID: uid, GID: gid, Link: target}
		next, _ := c.with(out)
		return next.touchParent(name, now), nil
	})
	if err != nil {
		return Entry{}, fmt.Errorf("symlink %s: %w", name, err)
	}
	return out, nil
}

// touchParent sets the mtime and ctime of name's parent, if it is an
// explicit directory (the root and implicit directories have no entry).
func (c *Catalog) touchParent(name string, now int64) *Catalog {
	p := parentOf(name)
	if p == "" {
		return c
	}
	e, ok := c.Lookup(p)
	if !ok || !e.Dir {
		return c
	}
	e.MTime, e.CTime = now, now
	next, _ := c.with(e)
	return next
}
