package container

import "errors"

// Errors of this package; the workload package's sentinels (ErrInvalid,
// ErrNotFound, ErrDependency, …) cover the rest.
var (
	// ErrDigestMismatch: content fetched for a digest hashes to another
	// digest. Permanent: the registry does not have, or will not serve,
	// the pinned content.
	ErrDigestMismatch = errors.New("content does not match its digest")
	// ErrImage: the image cannot be run (unsupported manifest, no
	// linux/GOARCH platform, too large, unsafe layer). Permanent.
	ErrImage = errors.New("unusable image")
	// ErrRegistry: the registry could not be reached or refused a request.
	// Retryable.
	ErrRegistry = errors.New("registry unavailable")
	// ErrInsecureRegistry: plain HTTP to a registry that is neither
	// loopback nor configured as insecure.
	ErrInsecureRegistry = errors.New("plain HTTP to this registry is not allowed")
	// ErrRuntime: runc or ip failed. Retryable.
	ErrRuntime = errors.New("container runtime error")
	// ErrNoAddress: every address slot of the subnet is taken. Retryable.
	ErrNoAddress = errors.New("no free container address")
)
