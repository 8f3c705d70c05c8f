package container

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/zerogrid/zerogrid/internal/workload/idmap"
)

// sandboxDir is a parent holding a root to extract into and a sentinel
// file outside it that no layer may touch.
func sandboxDir(t testing.TB) (parent string, root *os.Root) {
	t.Helper()
	parent = t.TempDir()
	if err := os.Mkdir(filepath.Join(parent, "root"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(parent, "outside"), []byte("untouched"), 0o600); err != nil {
		t.Fatal(err)
	}
	r, err := os.OpenRoot(filepath.Join(parent, "root"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close() })
	return parent, r
}

// checkContained fails unless the parent holds exactly root and the
// untouched sentinel, and root holds no device node.
func checkContained(t testing.TB, parent string) {
	t.Helper()
	ents, err := os.ReadDir(parent)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if !slices.Equal(names, []string{"outside", "root"}) {
		t.Fatalf("extraction wrote next to the root: %v", names)
	}
	if b, _ := os.ReadFile(filepath.Join(parent, "outside")); string(b) != "untouched" {
		t.Fatalf("the file outside the root became %q", b)
	}
	filepath.WalkDir(filepath.Join(parent, "root"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type()&(fs.ModeDevice|fs.ModeCharDevice|fs.ModeNamedPipe) != 0 {
			t.Fatalf("special file %s in the root", p)
		}
		return nil
	})
}

func extractAll(t testing.TB, root *os.Root, layers ...[]byte) (*extractor, error) {
	t.Helper()
	x := newExtractor(root, extractLimits{Bytes: 1 << 20, Entries: 1000}, idmap.Range{})
	for _, l := range layers {
		if err := x.layer(bytes.NewReader(l), ""); err != nil {
			return x, err
		}
	}
	return x, nil
}

func dirEntry(name string) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeDir, Mode: 0o755}}
}

func link(name, target string, typ byte) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: typ, Linkname: target}}
}

func TestExtractBasics(t *testing.T) {
	t.Parallel()
	parent, root := sandboxDir(t)
	l := layerTar(t, dirEntry("bin/"), reg("bin/app", "exe", 0o4755), reg("etc/conf", "c", 0o600),
		link("bin/sh", "app", tar.TypeSymlink), link("bin/hard", "bin/app", tar.TypeLink),
		tarEntry{hdr: tar.Header{Name: "dev/sda", Typeflag: tar.TypeBlock, Devmajor: 8}},
		tarEntry{hdr: tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}})
	x, err := extractAll(t, root, l)
	if err != nil {
		t.Fatal(err)
	}
	checkContained(t, parent)
	if x.skipped != 2 {
		t.Errorf("skipped %d special files, want 2", x.skipped)
	}
	fi, err := root.Stat("bin/app")
	if err != nil || fi.Mode()&fs.ModeSetuid == 0 || fi.Mode().Perm() != 0o755 {
		t.Errorf("bin/app mode = %v, %v; want setuid 0755", fi.Mode(), err)
	}
	if target, _ := root.Readlink("bin/sh"); target != "app" {
		t.Errorf("bin/sh -> %q", target)
	}
	if b, _ := root.ReadFile("bin/hard"); string(b) != "exe" {
		t.Errorf("hard link reads %q", b)
	}
}

func TestExtractStaysInside(t *testing.T) {
	t.Parallel()
	for name, l := range map[string][]tarEntry{
		"dotdot":              {reg("../outside", "pwned", 0o644), reg("../../x", "pwned", 0o644)},
		"absolute":            {reg("/outside", "pwned", 0o644)},
		"through abs symlink": {link("escape", "/", tar.TypeSymlink), reg("escape/outside", "pwned", 0o644)},
		"through rel symlink": {link("up", "../..", tar.TypeSymlink), reg("up/outside", "pwned", 0o644)},
		"symlink then file":   {link("f", "../outside", tar.TypeSymlink), reg("f", "pwned", 0o644)},
		"hard link out":       {link("h", "../outside", tar.TypeLink)},
		"whiteout out":        {reg("../.wh.outside", "", 0o644), reg(".wh...", "", 0o644)},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			parent, root := sandboxDir(t)
			extractAll(t, root, layerTar(t, l...)) // an error is fine; escaping is not
			checkContained(t, parent)
		})
	}
}

func TestExtractWhiteouts(t *testing.T) {
	t.Parallel()
	_, root := sandboxDir(t)
	lower := layerTar(t, reg("a/x", "1", 0o644), reg("a/y", "1", 0o644), reg("b/z", "1", 0o644), reg("b/sub/deep", "1", 0o644))
	upper := layerTar(t, reg("b/early", "2", 0o644), reg("a/.wh.x", "", 0o644), reg("b/.wh..wh..opq", "", 0o644),
		dirEntry("b/sub/"), reg("b/new", "2", 0o644))
	if _, err := extractAll(t, root, lower, upper); err != nil {
		t.Fatal(err)
	}
	var files []string
	fs.WalkDir(root.FS(), ".", func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			files = append(files, p)
		}
		return nil
	})
	if want := []string{"a/y", "b/early", "b/new"}; !slices.Equal(files, want) {
		t.Errorf("files after whiteouts = %v, want %v", files, want)
	}
}

func TestExtractLimitsAndDigest(t *testing.T) {
	t.Parallel()
	_, root := sandboxDir(t)
	x := newExtractor(root, extractLimits{Bytes: 10, Entries: 100}, idmap.Range{})
	if err := x.layer(bytes.NewReader(layerTar(t, reg("big", "01234567890", 0o644))), ""); !errors.Is(err, ErrImage) {
		t.Errorf("11 bytes under a 10-byte limit: %v", err)
	}
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	zw.Write(layerTar(t, reg("small", "ok", 0o644)))
	zw.Close()
	sum := sha256Hash(gz.Bytes()).String()
	if err := newExtractor(root, extractLimits{Bytes: 10, Entries: 100}, idmap.Range{}).layer(bytes.NewReader(gz.Bytes()), sum); err != nil {
		t.Errorf("gzip layer with the right digest: %v", err)
	}
	wrong := sha256Hash([]byte("other")).String()
	if err := newExtractor(root, extractLimits{Bytes: 10, Entries: 100}, idmap.Range{}).layer(bytes.NewReader(gz.Bytes()), wrong); !errors.Is(err, ErrDigestMismatch) {
		t.Errorf("gzip layer with a wrong digest: %v", err)
	}
}

// FuzzExtract: no layer, however malformed, writes outside the root or
// creates a device node.
func FuzzExtract(f *testing.F) {
	f.Add(layerTar(f, reg("a/b", "x", 0o644), link("l", "/", tar.TypeSymlink), reg("l/c", "y", 0o644)))
	f.Add(layerTar(f, reg("../x", "x", 0o644), link("h", "../outside", tar.TypeLink), reg("d/.wh..wh..opq", "", 0o644)))
	f.Add(layerTar(f, tarEntry{hdr: tar.Header{Name: "dev", Typeflag: tar.TypeChar}}, dirEntry("x/../../y/")))
	f.Fuzz(func(t *testing.T, data []byte) {
		parent, root := sandboxDir(t)
		extractAll(t, root, data)
		checkContained(t, parent)
	})
}
