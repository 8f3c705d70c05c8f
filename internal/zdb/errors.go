package zdb

import (
	"errors"
	"strings"
)

// NamespaceFullMessage starts the error reply of a SET that would take a
// namespace past its maxsize. It is 0-db's text, so clients written for 0-db
// keep working; match it as a prefix (IsNamespaceFull), the rest of the
// message gives the numbers.
const NamespaceFullMessage = "No space left on this namespace"

// Errors of the store and of the commands. Where a client sees one, the
// reply is the error's text (0-db's wording where 0-db has one), so these
// strings are part of the protocol: change them only with the format doc.
var (
	ErrNamespaceFull      = errors.New(NamespaceFullMessage)
	ErrKeyNotFound        = errors.New("Key not found")
	ErrKeyTooLarge        = errors.New("Key too large")
	ErrInvalidKey         = errors.New("Invalid key")
	ErrInvalidArgument    = errors.New("Invalid argument")
	ErrModeUnsupported    = errors.New("Index running mode doesn't support this feature")
	ErrNoKeysMatch        = errors.New("No keys match")
	ErrTooManyMatches     = errors.New("Too many keys match")
	ErrValueTooLarge      = errors.New("Value too large (limit 8 MiB)")
	ErrKeyNeeded          = errors.New("Invalid argument, key needed")
	ErrSeqUpdateOnly      = errors.New("Invalid key, only update authorized")
	ErrNamespaceNotFound  = errors.New("Namespace not found")
	ErrNamespaceExists    = errors.New("This namespace is not available")
	ErrBadNamespaceName   = errors.New("This name is not allowed (use 1-128 of A-Z a-z 0-9 . _ -, not starting with . _ or -)")
	ErrNamespaceDeleted   = errors.New("Your active namespace is not available anymore (probably removed).")
	ErrDeleteDefault      = errors.New("Cannot remove default namespace")
	ErrDeleteInUse        = errors.New("Cannot remove namespace you're currently using.")
	ErrUpdateDefault      = errors.New("Cannot update default namespace")
	ErrModeChange         = errors.New("Cannot change mode of used namespace")
	ErrBadProperty        = errors.New("Invalid property")
	ErrBadPropertyValue   = errors.New("Invalid property value")
	ErrReadOnly           = errors.New("Namespace is in read-only mode")
	ErrCorrupt            = errors.New("Data corrupted: record checksum mismatch (the key is not served; restore it from another copy)")
	ErrNoMoreData         = errors.New("No more data")
	ErrBadCursor          = errors.New("Invalid key format")
	ErrAccessDenied       = errors.New("Access denied")
	ErrPermission         = errors.New("Permission denied")
	ErrProtectedPrivate   = errors.New("Namespace protected and private")
	ErrNoChallenge        = errors.New("No CHALLENGE requested, secure authentication not available")
	ErrAuthDisabled       = errors.New("Authentication disabled")
	ErrBadHash            = errors.New("Invalid hash length")
	ErrOnlySecure         = errors.New("Only SECURE extra method supported")
	ErrUnknownCommand     = errors.New("Command not supported")
	ErrArguments          = errors.New("Invalid arguments")
	ErrWriteFailed        = errors.New("Cannot write data right now")
	ErrInternal           = errors.New("Internal error")
	ErrTooManyClients     = errors.New("ERR max number of clients reached")
	ErrTooManyFromAddr    = errors.New("ERR too many connections from your address")
	ErrTooManyAuthFailure = errors.New("Too many failed authentications, closing connection")

	ErrClosed     = errors.New("zdb: store is closed")
	ErrDirInUse   = errors.New("zdb: data directory is in use by another process")
	ErrBadOptions = errors.New("zdb: invalid options")

	// Format errors of data and index files: a record or file that does not
	// decode. They never reach a client; the loader reports and skips.
	errShort       = errors.New("zdb: truncated record")
	errMagic       = errors.New("zdb: bad magic")
	errVersion     = errors.New("zdb: unsupported format version")
	errChecksum    = errors.New("zdb: checksum mismatch")
	errHeader      = errors.New("zdb: invalid header field")
	errFraming     = errors.New("request too large or malformed")
	errSnapshotOld = errors.New("zdb: index file does not match the data files")
)

// IsNamespaceFull reports whether err is the "namespace full" error, either
// from this package or as the text of a server reply (a redis client error).
// A storage client maps it to ENOSPC.
func IsNamespaceFull(err error) bool {
	if err == nil {
		return false
	}
	return errors.Is(err, ErrNamespaceFull) || strings.HasPrefix(err.Error(), NamespaceFullMessage)
}
