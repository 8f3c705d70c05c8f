package zos

import (
	"bytes"
	"debug/elf"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
)

// libDirs are the directories Debian's dynamic loader searches when a
// library is named without a path and the ELF has no RUNPATH entry holding
// it. The image carries no ld.so.cache, so these are the loader's built-in
// list, and the image puts every library in the first of them.
var libDirs = []string{"/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64", "/lib", "/usr/lib"}

// opener opens a file of a tree: the build machine's filesystem, or an
// image's contents. It reports a missing file with an error satisfying
// errors.Is(err, os.ErrNotExist).
type opener func(name string) (io.ReaderAt, error)

// elfLinks is what the dynamic loader needs to run one ELF file.
type elfLinks struct {
	interp  string   // PT_INTERP, "" for a static file
	needed  []string // DT_NEEDED
	runpath []string // DT_RUNPATH, else DT_RPATH, with $ORIGIN expanded
	machine elf.Machine
	class   elf.Class
}

// readLinks reads the dynamic linking information of the ELF file at name.
// ok is false if the file is not an ELF file.
func readLinks(r io.ReaderAt, name string) (l elfLinks, ok bool, err error) {
	var magic [4]byte
	if _, err := r.ReadAt(magic[:], 0); err != nil || !bytes.Equal(magic[:], []byte(elf.ELFMAG)) {
		return l, false, nil
	}
	f, err := elf.NewFile(r)
	if err != nil {
		return l, true, fmt.Errorf("read ELF %s: %w", name, err)
	}
	l.machine, l.class = f.Machine, f.Class
	for _, p := range f.Progs {
		if p.Type != elf.PT_INTERP {
			continue
		}
		b, err := io.ReadAll(io.LimitReader(p.Open(), 4096))
		if err != nil {
			return l, true, fmt.Errorf("read ELF %s interpreter: %w", name, err)
		}
		l.interp = strings.TrimRight(string(b), "\x00")
	}
	if l.needed, err = f.DynString(elf.DT_NEEDED); err != nil {
		return l, true, fmt.Errorf("read ELF %s libraries: %w", name, err)
	}
	rp, _ := f.DynString(elf.DT_RUNPATH)
	if len(rp) == 0 {
		rp, _ = f.DynString(elf.DT_RPATH)
	}
	for _, list := range rp {
		for dir := range strings.SplitSeq(list, ":") {
			if dir != "" {
				l.runpath = append(l.runpath, strings.ReplaceAll(dir, "$ORIGIN", path.Dir(name)))
			}
		}
	}
	return l, true, nil
}

// linkClosure returns, in a stable order, the interpreters and shared
// libraries that the ELF files among progs need, recursively, as the
// absolute paths the dynamic loader finds them at in the tree open reads.
// Files that are not ELF are ignored. A library found nowhere is
// ErrMissingLibrary naming the program that needs it.
func linkClosure(open opener, progs []string) ([]string, error) {
	seen := map[string]bool{}
	var out, missing []string
	queue := slices.Clone(progs)
	for len(queue) > 0 {
		name := queue[0]
		queue = queue[1:]
		r, err := open(name)
		if err != nil {
			return nil, fmt.Errorf("open %s: %w", name, err)
		}
		l, isELF, err := readLinks(r, name)
		if closer, ok := r.(io.Closer); ok {
			closer.Close()
		}
		if err != nil {
			return nil, err
		}
		if !isELF {
			continue
		}
		var deps []string
		if l.interp != "" {
			if _, err := open(l.interp); err != nil {
				missing = append(missing, fmt.Sprintf("%s needs its interpreter %s", name, l.interp))
			} else {
				deps = append(deps, l.interp)
			}
		}
		for _, lib := range l.needed {
			p, ok := findLib(open, lib, l)
			if !ok {
				missing = append(missing, fmt.Sprintf("%s needs %s (searched %s)", name, lib, strings.Join(append(slices.Clone(l.runpath), libDirs...), ":")))
				continue
			}
			deps = append(deps, p)
		}
		for _, d := range deps {
			if !seen[d] {
				seen[d] = true
				out = append(out, d)
				queue = append(queue, d)
			}
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%w: %s", ErrMissingLibrary, strings.Join(missing, "; "))
	}
	return out, nil
}

// findLib finds lib the way the loader would for an ELF with links l: as
// given when it holds a slash, else in the RUNPATH and then the default
// directories, taking the first file that is an ELF of the same class and
// machine.
func findLib(open opener, lib string, l elfLinks) (string, bool) {
	if strings.Contains(lib, "/") {
		_, err := open(lib)
		return lib, err == nil
	}
	for _, dir := range append(slices.Clone(l.runpath), libDirs...) {
		p := path.Join(dir, lib)
		r, err := open(p)
		if err != nil {
			continue
		}
		got, isELF, err := readLinks(r, p)
		if closer, ok := r.(io.Closer); ok {
			closer.Close()
		}
		if err == nil && isELF && got.machine == l.machine && got.class == l.class {
			return p, true
		}
	}
	return "", false
}

// hostOpener opens files of the build machine, following symlinks.
func hostOpener(name string) (io.ReaderAt, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, err
	}
	if !st.Mode().IsRegular() {
		f.Close()
		return nil, fmt.Errorf("%s: not a regular file: %w", name, os.ErrNotExist)
	}
	return f, nil
}

// errNotInImage is what an image opener returns for a missing path.
var errNotInImage = fmt.Errorf("not in the image: %w", os.ErrNotExist)
