package catalog

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"
)

// TestCatalogVersion3: owners, times and links need version 3; a lower
// version holding them is rejected; a version 3 catalog round-trips.
func TestCatalogVersion3(t *testing.T) {
	t.Parallel()
	for _, e := range []Entry{
		{Name: "l", Mode: 0o777, Link: "../t"},
		{Name: "u", UID: 7},
		{Name: "c", CTime: 5},
		{Name: strings.Repeat("x/", 600) + "y"},
	} {
		c, _ := (&Catalog{}).with(Entry{Name: "d", Dir: true})
		c, _ = c.with(e)
		p, err := encodeCatalog(c)
		if err != nil {
			t.Fatal(err)
		}
		if p[5] != 3 {
			t.Fatalf("%.20q: version %d, want 3", e.Name, p[5])
		}
		got, err := decodeCatalog(p)
		if err != nil {
			t.Fatal(err)
		}
		if g, _ := got.Lookup(e.Name); g.Link != e.Link || g.UID != e.UID || g.CTime != e.CTime {
			t.Fatalf("round trip of %.20q: %+v", e.Name, g)
		}
		p[5] = 2
		if _, err := decodeCatalog(p); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("version 2 catalog with %.20q: %v, want ErrCorrupt", e.Name, err)
		}
	}
	bad := &Catalog{entries: []Entry{{Name: "l", Link: "t", Size: 1}}}
	if p, err := encodeCatalog(bad); err == nil {
		if _, err := decodeCatalog(p); err == nil {
			t.Fatal("a link with a size decodes")
		}
	}
}

func TestNameLimits(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		long bool
	}{
		{strings.Repeat("a", 255), false},
		{strings.Repeat("a", 256), true},
		{strings.Repeat("abcdefgh/", 455), false}, // 4094 bytes with a trailing component
		{strings.Repeat("a/", 2049), true},
	} {
		name := strings.TrimSuffix(tc.name, "/")
		err := ValidName(name)
		if tc.long != errors.Is(err, ErrNameTooLong) || (!tc.long && err != nil) {
			t.Errorf("ValidName of %d bytes: %v", len(name), err)
		}
	}
}

// TestSetAttrSymlinkParents: SetAttr and Symlink commit, and changes of a
// directory's entries move its mtime and ctime.
func TestSetAttrSymlinkParents(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestStore(t, 6, 2, 2)
	sec := secret(t)
	bs, _ := ts.backends(t)
	s, err := Init(ctx, ts.opts(bs), sec)
	if err != nil {
		t.Fatal(err)
	}
	old := time.Unix(100, 0)
	if err := s.Mkdir(ctx, "d", 0o755, old); err != nil {
		t.Fatal(err)
	}
	before, _ := s.Lookup("d")
	if _, err := s.Symlink(ctx, "d/l", "/etc/passwd", 5, 6); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Symlink(ctx, "d/l", "x", 0, 0); !errors.Is(err, ErrNameTaken) {
		t.Fatalf("symlink over a name: %v", err)
	}
	mode := uint32(0o700)
	if _, err := s.SetAttr(ctx, "d/l", Attr{MTime: &old}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetAttr(ctx, "d", Attr{Mode: &mode}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.SetAttr(ctx, "nope", Attr{Mode: &mode}); !errors.Is(err, ErrNotFound) {
		t.Fatalf("SetAttr of a missing name: %v", err)
	}
	bs, _ = ts.backends(t)
	r, err := Open(ctx, ts.opts(bs), sec)
	if err != nil {
		t.Fatal(err)
	}
	l, _ := r.Lookup("d/l")
	d, _ := r.Lookup("d")
	if l.Link != "/etc/passwd" || l.UID != 5 || l.GID != 6 || l.MTime != old.UnixNano() {
		t.Fatalf("link: %+v", l)
	}
	if d.Mode != 0o700 || d.MTime <= before.MTime || d.CTime <= before.CTime {
		t.Fatalf("directory after symlink and chmod: %+v (before %+v)", d, before)
	}
}
