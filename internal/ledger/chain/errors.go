package chain

import "errors"

var (
	// ErrConfig reports a Config or TestnetOptions field that cannot be used.
	// The wrapped message names the field. Permanent: fix the caller.
	ErrConfig = errors.New("invalid chain config")

	// ErrHome reports a home directory whose files cannot be read, parsed or
	// written. The wrapped message names the file. Permanent until an
	// operator repairs or removes the file.
	ErrHome = errors.New("unusable validator home")

	// ErrChainIDMismatch reports that Config.ChainID differs from the chain
	// ID in an existing genesis file, which usually means the wrong home.
	ErrChainIDMismatch = errors.New("chain ID does not match genesis")

	// ErrUnsupported reports a config.toml setting that the in-process node
	// cannot honour (for example RPC TLS or CORS).
	ErrUnsupported = errors.New("unsupported CometBFT setting")
)
