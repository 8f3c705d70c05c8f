package catalog

import (
	"encoding/binary"
	"fmt"
	"io"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/zerogrid/zerogrid/internal/storage"
	"github.com/zerogrid/zerogrid/internal/wire"
)

// Catalog format version 1 (docs/formats/catalog.md).
const (
	catalogVersion = 1
	// catalogVersionDirs is written when the catalog holds a directory
	// entry (tree.go); a catalog without one stays version 1, so older
	// readers still open it.
	catalogVersionDirs = 2
	// catalogVersionPOSIX is written when an entry carries a field of
	// version 3 (owner, ctime, atime, a symbolic link) or a name longer
	// than maxNameLenV2.
	catalogVersionPOSIX = 3
	catalogMagic        = "ZGCT"
	catalogAADTag       = "zerogrid storage catalog v1\x00"
	// MaxNameLen is the longest path name, in bytes (Linux's PATH_MAX
	// less the terminating NUL).
	MaxNameLen = 4095
	// MaxComponentLen is the longest path component, in bytes (NAME_MAX).
	MaxComponentLen = 255
	// MaxLinkLen is the longest symbolic link target, in bytes.
	MaxLinkLen = 4095
	// maxNameLenV2 is the longest name catalog versions 1 and 2 hold.
	maxNameLenV2 = 1024
	// MaxSegments is the most segments one file may have (the wire array
	// limit): 32 GiB at the default 8 MiB segment size. The encoded entry
	// must also fit wire.MaxInputSize, which with wide k+m is the tighter
	// bound (about 1300 segments at k+m = 20).
	MaxSegments = wire.MaxArrayLen
)

// Entry is one file of the catalog.
type Entry struct {
	Name     string               `cbor:"n" json:"name"`
	Size     int64                `cbor:"s" json:"size"`
	Mode     uint32               `cbor:"p" json:"mode"`  // permission bits
	MTime    int64                `cbor:"t" json:"mtime"` // Unix nanoseconds
	Segments []storage.SegmentRef `cbor:"g" json:"-"`
	Dir      bool                 `cbor:"d,omitempty" json:"dir,omitempty"` // an explicit directory (version 2)
	// Version 3: owner, change and access times, symbolic links.
	UID   uint32 `cbor:"u,omitempty" json:"uid,omitempty"`
	GID   uint32 `cbor:"o,omitempty" json:"gid,omitempty"`
	CTime int64  `cbor:"c,omitempty" json:"ctime,omitempty"` // Unix ns; 0: as mtime
	ATime int64  `cbor:"a,omitempty" json:"atime,omitempty"` // Unix ns; 0: as mtime
	Link  string `cbor:"l,omitempty" json:"link,omitempty"`  // a symbolic link to this target
}

// IsLink reports whether e is a symbolic link.
func (e *Entry) IsLink() bool { return e.Link != "" }

// v3 reports whether e needs catalog version 3.
func (e *Entry) v3() bool {
	return e.UID != 0 || e.GID != 0 || e.CTime != 0 || e.ATime != 0 || e.Link != "" || len(e.Name) > maxNameLenV2
}

// Catalog is the file tree: entries sorted by name, names unique.
type Catalog struct {
	entries []Entry
}

// ValidName checks a file name: 1 to MaxNameLen bytes of UTF-8 without
// control characters, slash-separated components that are neither empty,
// "." nor "..", no leading or trailing slash.
func ValidName(name string) error {
	bad := func(why string) error { return fmt.Errorf("%w: %q: %s", ErrName, name, why) }
	switch {
	case name == "":
		return bad("empty")
	case len(name) > MaxNameLen:
		return fmt.Errorf("%w: %w: %.40q…: %d bytes, at most %d", ErrName, ErrNameTooLong, name, len(name), MaxNameLen)
	case !utf8.ValidString(name):
		return bad("not UTF-8")
	case strings.ContainsFunc(name, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return bad("contains a control character")
	}
	for c := range strings.SplitSeq(name, "/") {
		if c == "" || c == "." || c == ".." {
			return bad(`empty, "." or ".." path component (use names like dir/file.txt)`)
		}
		if len(c) > MaxComponentLen {
			return fmt.Errorf("%w: %w: component %.40q… of %d bytes, at most %d", ErrName, ErrNameTooLong, c, len(c), MaxComponentLen)
		}
	}
	return nil
}

// Lookup returns the entry of name.
func (c *Catalog) Lookup(name string) (Entry, bool) {
	i, ok := slices.BinarySearchFunc(c.entries, name, func(e Entry, n string) int { return strings.Compare(e.Name, n) })
	if !ok {
		return Entry{}, false
	}
	return c.entries[i], true
}

// List returns the entries whose name starts with prefix, sorted.
func (c *Catalog) List(prefix string) []Entry {
	var out []Entry
	for _, e := range c.entries {
		if strings.HasPrefix(e.Name, prefix) {
			out = append(out, e)
		}
	}
	return out
}

// with returns a copy of c with e added or replacing the entry of its name,
// and the replaced entry, if any.
func (c *Catalog) with(e Entry) (*Catalog, *Entry) {
	entries := slices.Clone(c.entries)
	i, ok := slices.BinarySearchFunc(entries, e.Name, func(x Entry, n string) int { return strings.Compare(x.Name, n) })
	if ok {
		old := entries[i]
		entries[i] = e
		return &Catalog{entries: entries}, &old
	}
	return &Catalog{entries: slices.Insert(entries, i, e)}, nil
}

// encodeCatalog is the canonical plaintext: magic || uint16be(version) ||
// uint32be(count) || count × (uint32be(len) || wire(Entry)), sorted by name.
func encodeCatalog(c *Catalog) ([]byte, error) {
	out := []byte(catalogMagic)
	out = binary.BigEndian.AppendUint16(out, c.version())
	out = binary.BigEndian.AppendUint32(out, uint32(len(c.entries)))
	for i := range c.entries {
		b, err := wire.Marshal(&c.entries[i])
		if err != nil {
			return nil, fmt.Errorf("catalog: encode %q: %w", c.entries[i].Name, err)
		}
		if len(b) > wire.MaxInputSize {
			// It would never decode again: refuse it rather than commit it.
			return nil, fmt.Errorf("%w: %q: entry of %d bytes, at most %d (too many segments for one entry)", ErrTooLarge, c.entries[i].Name, len(b), wire.MaxInputSize)
		}
		out = binary.BigEndian.AppendUint32(out, uint32(len(b)))
		out = append(out, b...)
	}
	return out, nil
}

// decodeCatalog decodes and checks a catalog plaintext. It never panics.
func decodeCatalog(b []byte) (*Catalog, error) {
	bad := func(format string, a ...any) error {
		return fmt.Errorf("%w: catalog: %s", ErrCorrupt, fmt.Sprintf(format, a...))
	}
	if len(b) < 10 || string(b[:4]) != catalogMagic {
		return nil, bad("no catalog header")
	}
	v := binary.BigEndian.Uint16(b[4:])
	if v < catalogVersion || v > catalogVersionPOSIX {
		return nil, bad("version %d, this build reads %d to %d (a newer zgrid wrote it: upgrade)", v, catalogVersion, catalogVersionPOSIX)
	}
	n := binary.BigEndian.Uint32(b[6:])
	b = b[10:]
	c := &Catalog{}
	for i := uint32(0); i < n; i++ {
		if len(b) < 4 {
			return nil, bad("truncated at entry %d", i)
		}
		l := binary.BigEndian.Uint32(b)
		if uint64(l) > uint64(len(b)-4) {
			return nil, bad("entry %d of %d bytes overruns the catalog", i, l)
		}
		var e Entry
		if err := wire.Unmarshal(b[4:4+l], &e); err != nil {
			return nil, bad("entry %d: %v", i, err)
		}
		b = b[4+l:]
		if err := checkEntry(&e); err != nil {
			return nil, bad("entry %d: %v", i, err)
		}
		if e.Dir && v == catalogVersion {
			return nil, bad("entry %d: directory in a version 1 catalog", i)
		}
		if e.v3() && v < catalogVersionPOSIX {
			return nil, bad("entry %d: version 3 fields in a version %d catalog", i, v)
		}
		if len(c.entries) > 0 && c.entries[len(c.entries)-1].Name >= e.Name {
			return nil, bad("entry %q out of order or repeated", e.Name)
		}
		c.entries = append(c.entries, e)
	}
	if len(b) != 0 {
		return nil, bad("%d trailing bytes", len(b))
	}
	return c, nil
}

// checkEntry checks an entry's name, references and size.
func checkEntry(e *Entry) error {
	if err := ValidName(e.Name); err != nil {
		return err
	}
	if e.Dir && (len(e.Segments) != 0 || e.Size != 0) {
		return fmt.Errorf("directory with %d bytes in %d segments", e.Size, len(e.Segments))
	}
	if e.Link != "" {
		if err := validLink(e.Link); err != nil {
			return err
		}
		if e.Dir || len(e.Segments) != 0 || e.Size != 0 {
			return fmt.Errorf("symbolic link with data or a directory flag")
		}
	}
	var sum int64
	for i := range e.Segments {
		if err := e.Segments[i].Validate(); err != nil {
			return err
		}
		sum += int64(e.Segments[i].PlainLen)
	}
	if e.Size != sum {
		return fmt.Errorf("size %d, segments hold %d bytes", e.Size, sum)
	}
	return nil
}

// sealCatalog encrypts the catalog plaintext for root seq:
// nonce || AES-256-GCM(plain), associated data the tag and seq.
func sealCatalog(k *keys, rand io.Reader, seq uint64, plain []byte) ([]byte, error) {
	aead, err := newGCM(&k.cat)
	if err != nil {
		return nil, err
	}
	out := make([]byte, nonceSize, nonceSize+len(plain)+aead.Overhead())
	if _, err := io.ReadFull(rand, out); err != nil {
		return nil, fmt.Errorf("catalog: read randomness: %w", err)
	}
	return aead.Seal(out, out, plain, catalogAAD(seq)), nil
}

// openCatalog decrypts and decodes a sealed catalog of root seq.
func openCatalog(k *keys, seq uint64, sealed []byte) (*Catalog, error) {
	aead, err := newGCM(&k.cat)
	if err != nil {
		return nil, err
	}
	if len(sealed) < nonceSize+aead.Overhead() {
		return nil, fmt.Errorf("%w: catalog of %d bytes", ErrCorrupt, len(sealed))
	}
	plain, err := aead.Open(nil, sealed[:nonceSize], sealed[nonceSize:], catalogAAD(seq))
	if err != nil {
		return nil, fmt.Errorf("%w: catalog does not decrypt", ErrCorrupt)
	}
	return decodeCatalog(plain)
}

func catalogAAD(seq uint64) []byte {
	return binary.BigEndian.AppendUint64([]byte(catalogAADTag), seq)
}

// validLink checks a symbolic link target: 1 to MaxLinkLen bytes, no NUL.
// The target is not a catalog name: it may be absolute, hold "..", or
// point nowhere.
func validLink(target string) error {
	switch {
	case target == "":
		return fmt.Errorf("%w: empty symbolic link target", ErrName)
	case len(target) > MaxLinkLen:
		return fmt.Errorf("%w: %w: symbolic link target of %d bytes, at most %d", ErrName, ErrNameTooLong, len(target), MaxLinkLen)
	case strings.IndexByte(target, 0) >= 0:
		return fmt.Errorf("%w: symbolic link target with a NUL byte", ErrName)
	}
	return nil
}
