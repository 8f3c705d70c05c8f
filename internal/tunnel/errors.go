package tunnel

import "errors"

// Errors. ErrNoBackend is retryable (a backend may connect); ErrWrongGateway
// and ErrRefused are permanent until the configuration or the ledger changes.

// ErrNoBackend: no live backend serves the name.
var ErrNoBackend = errors.New("tunnel: no backend connected for this name")

// ErrRefused: the gateway accepted none of the backend's names.
var ErrRefused = errors.New("tunnel: gateway refused every name")

// ErrWrongGateway: the gateway's TLS key is not the one the backend pinned.
var ErrWrongGateway = errors.New("tunnel: gateway key does not match the pinned key (check --gateway-key)")

// ErrProtocol wraps every malformed or unexpected message.
var ErrProtocol = errors.New("tunnel: protocol error")

// ErrNotAuthorized: an Authorizer refusing a key for a name wraps it.
// Any other Authorizer error means the question could not be answered
// (the ledger was unreachable): a new tunnel is refused then, but a live
// one is not cut for it.
var ErrNotAuthorized = errors.New("tunnel: key not authorized for the name")

// ErrServerClosed is returned by ServeQUIC and ServeTLS once Close was
// called.
var ErrServerClosed = errors.New("tunnel: server closed")
