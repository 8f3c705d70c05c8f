package zdb

import (
	"bufio"
	"errors"
	"io"
	"os"
	"path/filepath"

	"github.com/zerogrid/zerogrid/internal/atomicfile"
)

// tmpSuffix marks the temporary files of older versions of the server; a
// loader removes them, and atomicfile's, which are what a crash in the
// middle of a write leaves behind.
const tmpSuffix = ".tmp"

// writeFileAtomic replaces dir/name with what write produces, mode 0600
// (atomicfile.Write): after a crash the file is either the old or the new
// version, never a mix.
func writeFileAtomic(dir, name string, write func(w *bufio.Writer) error) error {
	return atomicfile.Write(filepath.Join(dir, name), 0o600, func(w io.Writer) error {
		bw := bufio.NewWriterSize(w, 256<<10)
		if err := write(bw); err != nil {
			return err
		}
		return bw.Flush()
	})
}

// syncDir makes renames, creations and removals in dir durable.
func syncDir(dir string) error { return atomicfile.SyncDir(dir) }

// removeTmpFiles deletes the leftovers of interrupted atomic writes in dir.
func removeTmpFiles(dir string) error {
	matches, err := filepath.Glob(filepath.Join(dir, "*"+tmpSuffix))
	if err != nil {
		return err
	}
	errs := []error{atomicfile.RemoveTemps(dir)}
	for _, m := range matches {
		errs = append(errs, os.Remove(m))
	}
	return errors.Join(errs...)
}
