// Package statefile reads and writes the small JSON records in which
// workload managers remember, on the node's disk, what they created. A
// record is replaced atomically and durably (temporary file, fsync, rename,
// fsync of the directory), so after a crash it holds either the old or the
// new content, never a torn mix.
package statefile

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"

	"github.com/zerogrid/zerogrid/internal/atomicfile"
)

// MaxSize bounds a record read back from disk.
const MaxSize = 1 << 20

// Save writes v as indented JSON to path (mode 0600), atomically.
func Save(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return fmt.Errorf("encode %s: %w", path, err)
	}
	return WriteFile(path, append(b, '\n'), 0o600)
}

// Load decodes the record at path into v. ok is false, with no error, when
// there is no record. Unknown fields are an error: a newer agent's record
// is not silently misread.
func Load(path string, v any) (ok bool, err error) {
	f, err := os.Open(path)
	if errors.Is(err, os.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	if fi, err := f.Stat(); err == nil && fi.Size() > MaxSize {
		return false, fmt.Errorf("%s: %d bytes, limit %d", path, fi.Size(), MaxSize)
	}
	dec := json.NewDecoder(f)
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return false, fmt.Errorf("%s: %w", path, err)
	}
	return true, nil
}

// WriteFile replaces path with b atomically and durably
// (atomicfile.WriteFile).
func WriteFile(path string, b []byte, perm os.FileMode) error {
	return atomicfile.WriteFile(path, b, perm)
}

// Versioned is a record that carries its layout version.
type Versioned interface{ LayoutVersion() int }

// LoadVersion is Load for a record that must be of layout version want: a
// record of another version is an error (never misread), with ok false.
func LoadVersion(path string, v Versioned, want int) (ok bool, err error) {
	ok, err = Load(path, v)
	if err != nil || !ok {
		return ok, err
	}
	if got := v.LayoutVersion(); got != want {
		return false, fmt.Errorf("%s: layout version %d, this node reads %d", path, got, want)
	}
	return true, nil
}
