// Package atomicfile replaces files so that a crash at any moment leaves
// either the complete old content or the complete new content under the
// file's name, never a mix or a truncated file.
//
// Every write follows the same steps:
//
//  1. write the new content to a temporary file in the same directory
//     (same file system, so the rename below is atomic), created with the
//     final permissions;
//  2. fsync the temporary file, so its content is on stable storage before
//     any name points at it;
//  3. rename it over the file's name (atomic on POSIX file systems);
//  4. fsync the directory, so the rename itself survives a power loss.
//
// Guarantees: a crash before step 3 leaves the old file (or none) and a
// stray temporary file; a crash after step 3 leaves the new file, which
// after step 4 also survives a power loss on storage that honours flushes.
// The function returns nil only after step 4. Temporary files are named
// "." + base + ".tmp-" + random; RemoveTemps deletes the leftovers of a
// crash in a directory.
//
// Files are not locked: two writers replacing one name concurrently each
// succeed, and the last rename wins.
package atomicfile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
)

// steps are the operations whose order makes a write atomic and durable.
// Tests replace them to observe the order and to simulate a crash between
// two steps.
type steps struct {
	syncFile func(f *os.File) error
	rename   func(from, to string) error
	syncDir  func(dir string) error
}

var real = steps{
	syncFile: (*os.File).Sync,
	rename:   os.Rename,
	syncDir:  syncDir,
}

// tempInfix is in the name of every temporary file: "." + base + tempInfix
// + random digits.
const tempInfix = ".tmp-"

// File is the temporary file of one replacement. Write to it (it embeds
// *os.File), then Commit; Abort, deferred, removes it if Commit was not
// reached.
type File struct {
	*os.File
	path      string
	steps     *steps
	committed bool
}

// Create starts the replacement of path: a temporary file in path's
// directory with mode perm (not reduced by the umask).
func Create(path string, perm os.FileMode) (*File, error) { return create(path, perm, &real) }

func create(path string, perm os.FileMode, st *steps) (*File, error) {
	dir, base := filepath.Split(path)
	if dir == "" {
		dir = "."
	}
	f, err := os.CreateTemp(dir, "."+base+tempInfix+"*")
	if err != nil {
		return nil, fmt.Errorf("create temporary file for %s: %w", path, err)
	}
	if err := f.Chmod(perm); err != nil && !errors.Is(err, errors.ErrUnsupported) {
		f.Close()
		os.Remove(f.Name())
		return nil, fmt.Errorf("create temporary file for %s: %w", path, err)
	}
	return &File{File: f, path: path, steps: st}, nil
}

// Commit fsyncs and closes the file, renames it over the target and fsyncs
// the directory. On error the target is unchanged, unless the error is from
// the final directory fsync (then the new content is in place but may not
// survive a power loss).
func (f *File) Commit() error {
	if err := f.sync(); err != nil {
		return err
	}
	if err := f.File.Close(); err != nil {
		f.Abort()
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	return f.rename()
}

// CommitOpen is Commit without closing: the file stays open, under the
// target's name, for the caller to use and close.
func (f *File) CommitOpen() error {
	if err := f.sync(); err != nil {
		return err
	}
	return f.rename()
}

func (f *File) sync() error {
	if err := f.steps.syncFile(f.File); err != nil {
		f.Abort()
		return fmt.Errorf("write %s: fsync: %w", f.path, err)
	}
	return nil
}

func (f *File) rename() error {
	if err := f.steps.rename(f.Name(), f.path); err != nil {
		f.Abort()
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	f.committed = true
	return f.steps.syncDir(filepath.Dir(f.path))
}

// CommitNew is Commit for a file that must not replace anything: it links
// the file to the target name only if that name does not exist (the error
// then matches fs.ErrExist), atomically with a hard link, or with a check
// and a rename where the file system has no hard links.
func (f *File) CommitNew() error {
	if err := f.sync(); err != nil {
		return err
	}
	defer f.Abort() // the temporary name goes once the link exists
	if err := f.File.Close(); err != nil {
		return fmt.Errorf("write %s: %w", f.path, err)
	}
	err := os.Link(f.Name(), f.path)
	switch {
	case errors.Is(err, fs.ErrExist):
		return fmt.Errorf("write %s: %w", f.path, fs.ErrExist)
	case err != nil:
		if _, serr := os.Lstat(f.path); serr == nil {
			return fmt.Errorf("write %s: %w", f.path, fs.ErrExist)
		}
		if rerr := f.steps.rename(f.Name(), f.path); rerr != nil {
			return fmt.Errorf("write %s: %w (link: %v)", f.path, rerr, err)
		}
		f.committed = true
	}
	return f.steps.syncDir(filepath.Dir(f.path))
}

// Abort closes and removes the temporary file unless Commit renamed it.
// It is safe to call more than once and after Commit.
func (f *File) Abort() {
	if f.committed {
		return
	}
	f.File.Close()
	os.Remove(f.Name())
}

// WriteFile replaces path with data, mode perm.
func WriteFile(path string, data []byte, perm os.FileMode) error {
	return Write(path, perm, func(w io.Writer) error {
		_, err := w.Write(data)
		return err
	})
}

// WriteNew creates path with data, mode perm, with the guarantees of
// WriteFile, and never replaces an existing file: then the error matches
// fs.ErrExist.
func WriteNew(path string, data []byte, perm os.FileMode) error {
	f, err := Create(path, perm)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Abort()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.CommitNew()
}

// Write replaces path with what write writes, mode perm. Nothing changes
// if write fails.
func Write(path string, perm os.FileMode, write func(w io.Writer) error) error {
	return writeWith(path, perm, write, &real)
}

func writeWith(path string, perm os.FileMode, write func(w io.Writer) error, st *steps) error {
	f, err := create(path, perm, st)
	if err != nil {
		return err
	}
	if err := write(f.File); err != nil {
		f.Abort()
		return fmt.Errorf("write %s: %w", path, err)
	}
	return f.Commit()
}

// SyncDir fsyncs the directory dir, which makes the creations, renames and
// removals of names in it durable.
func SyncDir(dir string) error { return real.syncDir(dir) }

// IsTemp reports whether name (a base name) is a temporary file of this
// package.
func IsTemp(name string) bool {
	return strings.HasPrefix(name, ".") && strings.Contains(name, tempInfix)
}

// RemoveTemps deletes the temporary files that interrupted replacements
// left in dir. Call it only when no replacement in dir is running.
func RemoveTemps(dir string) error {
	des, err := os.ReadDir(dir)
	if err != nil {
		return err
	}
	var errs []error
	for _, de := range des {
		if de.Type().IsRegular() && IsTemp(de.Name()) {
			if err := os.Remove(filepath.Join(dir, de.Name())); err != nil && !errors.Is(err, fs.ErrNotExist) {
				errs = append(errs, err)
			}
		}
	}
	return errors.Join(errs...)
}
