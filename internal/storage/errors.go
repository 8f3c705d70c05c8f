package storage

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// Errors of backends. Implementations wrap them (fmt.Errorf("…: %w", …)) so
// that callers branch with errors.Is whatever the backend.
var (
	// ErrNotFound: no object has this name. Permanent for that name.
	ErrNotFound = errors.New("storage: object not found")
	// ErrFull: the backend has no space (or quota) left; a mount maps it to
	// ENOSPC. Retrying the same backend will fail until space is freed.
	ErrFull = errors.New("storage: backend is full")
	// ErrUnavailable: the backend cannot be reached or is failing (network,
	// I/O error, missing root). Retryable: the same call may succeed later.
	ErrUnavailable = errors.New("storage: backend unavailable")
	// ErrInvalidName: the object name breaks the rules of ValidName.
	ErrInvalidName = errors.New("storage: invalid object name")
	// ErrRange: a ranged read reaches past the end of the object.
	ErrRange = errors.New("storage: read past the end of the object")
)

// Errors of the segment pipeline.
var (
	// ErrParams: k, m or the segment size is out of bounds.
	ErrParams = errors.New("storage: invalid erasure-coding parameters")
	// ErrPlacement: the backends given cannot hold a segment's shards without
	// putting too many on one failure domain.
	ErrPlacement = errors.New("storage: backends cannot satisfy the placement rules")
	// ErrTooFewShards: a write stored fewer than k+1 shards, or a read found
	// fewer than k intact shards.
	ErrTooFewShards = errors.New("storage: too few shards")
	// ErrBadShard: a shard is malformed, or its header or a block does not
	// match its hash, or it is not the shard the segment reference names.
	ErrBadShard = errors.New("storage: shard is corrupt or forged")
	// ErrShardVersion: a shard has a format version this build cannot read.
	ErrShardVersion = errors.New("storage: unsupported shard format version")
	// ErrDecrypt: k verified shards did not decrypt; the segment reference or
	// its shards were tampered with.
	ErrDecrypt = errors.New("storage: segment does not decrypt")
	// ErrOwnerKey: the segment's key is bound to its owner (format version
	// 2) and the decoder was given no owner key: open the store with the
	// owner's mnemonic.
	ErrOwnerKey = errors.New("storage: segment key is bound to its owner; open the store with the owner's mnemonic")
	// ErrBadRef: a segment reference is malformed.
	ErrBadRef = errors.New("storage: invalid segment reference")
)

// IsRetryable reports whether err may go away if the same operation is
// tried again later: an unavailable backend or a deadline.
func IsRetryable(err error) bool {
	return errors.Is(err, ErrUnavailable) || errors.Is(err, context.DeadlineExceeded)
}

// ShardFault records one shard that could not be stored or read: which
// segment, which shard index and which backend, and why. The caller queues
// repair from these.
type ShardFault struct {
	Segment SegmentID
	Index   int
	Backend string
	Err     error
}

func (f ShardFault) String() string {
	return fmt.Sprintf("shard %d of segment %s on backend %q: %v", f.Index, f.Segment, f.Backend, f.Err)
}

// WriteError is returned when a segment could not be stored on enough
// backends. It names every failing backend; errors.Is matches
// ErrTooFewShards and each backend's error (so ErrFull shows through and a
// mount can return ENOSPC).
type WriteError struct {
	Segment SegmentID
	Stored  int // shards stored (and then removed again)
	Need    int // shards required: k+1
	Faults  []ShardFault
}

func (e *WriteError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "storage: segment %s: stored %d shards, need %d; failed:", e.Segment, e.Stored, e.Need)
	for i, f := range e.Faults {
		if i > 0 {
			b.WriteString(";")
		}
		fmt.Fprintf(&b, " backend %q: %v", f.Backend, f.Err)
	}
	return b.String()
}

// Unwrap exposes ErrTooFewShards and each backend's error to errors.Is.
func (e *WriteError) Unwrap() []error {
	errs := []error{ErrTooFewShards}
	for _, f := range e.Faults {
		errs = append(errs, f.Err)
	}
	return errs
}

// ReadError is returned when fewer than k shards of a segment could be
// fetched and verified. Faults says what happened to each shard tried.
type ReadError struct {
	Segment SegmentID
	Have    int // verified shards
	Need    int // k
	Faults  []ShardFault
}

func (e *ReadError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "storage: segment %s: %d intact shards, need %d;", e.Segment, e.Have, e.Need)
	for i, f := range e.Faults {
		if i > 0 {
			b.WriteString(";")
		}
		fmt.Fprintf(&b, " shard %d on %q: %v", f.Index, f.Backend, f.Err)
	}
	return b.String()
}

// Unwrap exposes ErrTooFewShards and each shard's error to errors.Is.
func (e *ReadError) Unwrap() []error {
	errs := []error{ErrTooFewShards}
	for _, f := range e.Faults {
		errs = append(errs, f.Err)
	}
	return errs
}
