package gateway

import (
	"errors"

	"github.com/zerogrid/zerogrid/internal/tunnel"
)

// Errors of the gateway package.
var (
	// ErrConfig marks a Config or ACMEConfig that cannot work; the message
	// names the field.
	ErrConfig = errors.New("gateway: bad configuration")
	// ErrCA marks a local CA in the gateway directory that cannot be used.
	ErrCA = errors.New("gateway: local CA")
	// ErrNotAuthorized is returned by LedgerAuthorizer for a key the
	// name's contract does not list; it is the tunnel's, so the tunnel
	// server tells a refusal from a ledger it could not reach.
	ErrNotAuthorized = tunnel.ErrNotAuthorized
	// ErrClosed is returned by Serve after Shutdown or Close.
	ErrClosed = errors.New("gateway: closed")
	// ErrNotTLS is returned by the ClientHello peek for bytes that are not
	// a TLS ClientHello.
	ErrNotTLS = errors.New("gateway: not a TLS ClientHello")
)
