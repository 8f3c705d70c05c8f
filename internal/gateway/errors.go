package gateway

import "errors"

// Errors of the gateway package.
var (
	// ErrConfig marks a Config or ACMEConfig that cannot work; the message
	// names the field.
	ErrConfig = errors.New("gateway: bad configuration")
	// ErrCA marks a local CA in the gateway directory that cannot be used.
	ErrCA = errors.New("gateway: local CA")
	// ErrNotAuthorized is returned by LedgerAuthorizer for a key the
	// name's contract does not list.
	ErrNotAuthorized = errors.New("gateway: key not authorized")
	// ErrClosed is returned by Serve after Shutdown or Close.
	ErrClosed = errors.New("gateway: closed")
	// ErrNotTLS is returned by the ClientHello peek for bytes that are not
	// a TLS ClientHello.
	ErrNotTLS = errors.New("gateway: not a TLS ClientHello")
)
