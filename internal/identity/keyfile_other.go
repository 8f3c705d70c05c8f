//go:build !unix

package identity

import "io/fs"

// checkKeyFileMode has nothing to check where Unix permission bits do not
// exist; access control there is the platform's (ACLs).
func checkKeyFileMode(string, fs.FileInfo) error { return nil }
