//go:build !unix

package atomicfile

// syncDir does nothing where a directory cannot be opened for fsync; the
// platform's file system journals renames itself (NTFS).
func syncDir(string) error { return nil }
