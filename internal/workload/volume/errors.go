package volume

import "errors"

// Errors of this package; the workload package's sentinels cover the rest.
var (
	// ErrShrink: a volume cannot be made smaller than it is (permanent).
	ErrShrink = errors.New("volume cannot shrink")
	// ErrNotMounted: a size-limited volume's filesystem is not mounted
	// (retryable: Provision mounts it).
	ErrNotMounted = errors.New("volume filesystem not mounted")
	// ErrInUse: the volume is still mounted by a container, so it cannot
	// be resized offline (retryable once the containers stop).
	ErrInUse = errors.New("volume in use")
)
