package zdb

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"path/filepath"
)

// tmpSuffix marks files being written; a loader removes leftovers, which are
// what a crash in the middle of a write leaves behind.
const tmpSuffix = ".tmp"

// writeFileAtomic replaces dir/name with what write produces: it writes
// dir/name.tmp, fsyncs it, renames it over dir/name and fsyncs dir. After a
// crash the file is either the old or the new version, never a mix.
func writeFileAtomic(dir, name string, write func(w *bufio.Writer) error) error {
	path := filepath.Join(dir, name)
	tmp := path + tmpSuffix
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return err
	}
	w := bufio.NewWriterSize(f, 256<<10)
	err = write(w)
	if err == nil {
		err = w.Flush()
	}
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		_ = os.Remove(tmp)
		return fmt.Errorf("write %s: %w", path, err)
	}
	return syncDir(dir)
}

// syncDir makes renames, creations and removals in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	err = d.Sync()
	if cerr := d.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("fsync directory %s: %w", dir, err)
	}
	return nil
}

// removeTmpFiles deletes the leftovers of interrupted atomic writes in dir.
func removeTmpFiles(dir string) error {
	matches, err := filepath.Glob(filepath.Join(dir, "*"+tmpSuffix))
	if err != nil {
		return err
	}
	var errs []error
	for _, m := range matches {
		errs = append(errs, os.Remove(m))
	}
	return errors.Join(errs...)
}
