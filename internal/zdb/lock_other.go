//go:build !unix

package zdb

// lockDir has no portable implementation here: without flock, nothing
// stops two servers from sharing a directory, so do not.
func lockDir(string) (func() error, error) {
	return func() error { return nil }, nil
}
