package workload

import (
	"errors"
	"fmt"
	"time"
)

// Sentinels shared by every manager. Wrap them; callers branch with
// errors.Is.
var (
	// ErrNotFound: the manager has no such workload. Deprovision never
	// returns it; Observe and Update do.
	ErrNotFound = errors.New("workload not found")
	// ErrInvalid: the workload's type, resources or config cannot be run as
	// written. Always inside a *PermanentError.
	ErrInvalid = errors.New("invalid workload")
	// ErrWrongType: a manager was given a workload of another type.
	ErrWrongType = errors.New("workload of another type")
	// ErrDependency: a workload this one needs (a volume a container
	// mounts) is not there yet. Retryable: provision the dependency first.
	ErrDependency = errors.New("dependency not ready")
	// ErrClosed: the manager was closed.
	ErrClosed = errors.New("workload manager closed")
	// ErrUnsupported: this node cannot run the workload at all (missing
	// kernel feature or tool). Always inside a *PermanentError or an
	// *UnavailableError.
	ErrUnsupported = errors.New("unsupported on this node")
)

// UnavailableError is what a manager's constructor returns when this node
// cannot run its workload type at all: a tool, kernel feature or privilege
// is missing. Reason says what and how to fix it, naming the Debian package
// when one provides it ("runc is not installed (Debian package runc)"). The
// node registers no manager for Type and reports the reason in its
// heartbeat, so the ledger offers it no such workload.
type UnavailableError struct {
	Type   string // the workload type, e.g. spec.TypeContainer
	Reason string
}

func (e *UnavailableError) Error() string {
	return "this node cannot run " + e.Type + " workloads: " + e.Reason
}

// Unwrap makes errors.Is(err, ErrUnsupported) hold.
func (e *UnavailableError) Unwrap() error { return ErrUnsupported }

// PermanentError is a failure that retrying with the same deployment and
// workload cannot fix: only a new generation of the spec can. The reconciler
// stops retrying and reports the workload Failed with Reason.
type PermanentError struct {
	Reason string // what is wrong and what to do; shown to the owner
	Err    error  // a sentinel for errors.Is, e.g. ErrInvalid
}

func (e *PermanentError) Error() string { return e.Reason }
func (e *PermanentError) Unwrap() error { return e.Err }

// RetryableError is a failure that may go away by itself (a registry that
// is down, a dependency not provisioned yet). After, when set, is the
// earliest useful retry; the caller's backoff still applies.
type RetryableError struct {
	Reason string
	Err    error
	After  time.Duration
}

func (e *RetryableError) Error() string { return e.Reason }
func (e *RetryableError) Unwrap() error { return e.Err }

// Permanent returns a *PermanentError wrapping sentinel with a formatted
// reason. Arguments that are errors are formatted with %v, not wrapped.
func Permanent(sentinel error, format string, args ...any) error {
	return &PermanentError{Reason: fmt.Sprintf(format, args...), Err: sentinel}
}

// Retryable returns a *RetryableError wrapping err with a formatted reason.
func Retryable(err error, format string, args ...any) error {
	return &RetryableError{Reason: fmt.Sprintf(format, args...), Err: err}
}

// IsPermanent reports whether err (or anything it wraps) is a
// *PermanentError. A cancelled context is never permanent.
func IsPermanent(err error) bool {
	var p *PermanentError
	return errors.As(err, &p)
}

// Reason is the one line an owner sees for err: the reason of the
// outermost typed error, else err's text, truncated to MaxReason bytes.
func Reason(err error) string {
	if err == nil {
		return ""
	}
	var p *PermanentError
	var r *RetryableError
	s := err.Error()
	switch {
	case errors.As(err, &p):
		s = p.Reason
	case errors.As(err, &r):
		s = r.Reason
	}
	return truncate(s, MaxReason)
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && s[n]&0xC0 == 0x80 { // do not split a UTF-8 sequence
		n--
	}
	return s[:n]
}
