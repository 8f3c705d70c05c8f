package storage

import (
	"context"
	"fmt"
)

// Backend stores named, immutable-once-written objects (shards) at one
// location. Implementations: internal/storage/mem (tests),
// internal/storage/dir (a local directory) and internal/storage/zdbbackend
// (a namespace on a zdb server). Every implementation must pass the
// conformance suite in internal/storage/backendtest.
//
// Concurrency: all methods are safe for concurrent use, also on the same
// name. A reader never observes a partially written object: it sees either
// the old content, the new content, or ErrNotFound.
//
// Idempotence: Put is create-or-replace; repeating a Put with the same
// content has the same effect as doing it once, so a failed Put may simply
// be retried. Delete of a missing name succeeds. Get, Stat and List have no
// effect.
//
// Errors: every failure is wrapped around one of the sentinels, so callers
// branch with errors.Is: ErrNotFound (no such name; permanent), ErrFull (no
// space: ENOSPC to a user; retry only after space is freed), ErrUnavailable
// (the location cannot be reached or failed an I/O; retryable),
// ErrInvalidName (the name breaks ValidName; the call did nothing) and
// ErrRange (a ranged Get past the end). A cancelled or expired ctx makes a
// call return ctx.Err() (possibly wrapped), having written nothing visible.
// Errors never contain credentials.
type Backend interface {
	// ID is the backend's stable identifier, as written in segment
	// references. It never contains an address or a password.
	ID() string
	// Domain is the failure-domain label (a host, rack or site). Backends
	// with the same label are assumed to fail together. An empty label
	// means the backend is a domain of its own.
	Domain() string
	// Put stores data under name, replacing any object of that name
	// atomically, and returns once the data is durable (for a disk: synced,
	// rename synced). Put does not retain data after it returns.
	Put(ctx context.Context, name string, data []byte) error
	// Get returns length bytes of the object starting at off, or everything
	// from off to the end when length < 0. A range past the end is ErrRange.
	// The returned slice belongs to the caller.
	Get(ctx context.Context, name string, off, length int64) ([]byte, error)
	// Stat returns the object's size.
	Stat(ctx context.Context, name string) (Info, error)
	// Delete removes the object; a missing object is not an error.
	Delete(ctx context.Context, name string) error
	// List calls fn for every object whose name starts with prefix, in no
	// particular order. An error from fn stops the listing and is returned.
	// Objects put or deleted during a listing may or may not be seen.
	List(ctx context.Context, prefix string, fn func(Info) error) error
}

// Info describes one stored object.
type Info struct {
	Name string
	Size int64
}

// MaxNameLen is the longest object name a backend must accept.
const MaxNameLen = 200

// ValidName checks an object name: 1 to MaxNameLen characters from
// [A-Za-z0-9._-], starting with a letter or digit. So a name is never empty,
// never "." or "..", never contains a path separator, and never looks like a
// backend's hidden temporary file (which start with a dot).
func ValidName(name string) error {
	if len(name) == 0 || len(name) > MaxNameLen {
		return fmt.Errorf("%w: %q: length %d, want 1 to %d", ErrInvalidName, name, len(name), MaxNameLen)
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '-' && c != '_') {
			return fmt.Errorf("%w: %q: character %q at %d (use letters, digits, '.', '-', '_', starting with a letter or digit)", ErrInvalidName, name, c, i)
		}
	}
	return nil
}
