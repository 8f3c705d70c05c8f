//go:build unix

package identity

import (
	"fmt"
	"io/fs"
)

// checkKeyFileMode refuses a key file that group or others may read or
// write: the passphrase is all that stands between them and the key, and
// they could replace the file with one of their own.
func checkKeyFileMode(path string, fi fs.FileInfo) error {
	if m := fi.Mode().Perm(); m&0o077 != 0 {
		return fmt.Errorf("%w: %s has mode %04o; run: chmod 600 %s", ErrKeyFileMode, path, m, path)
	}
	return nil
}
