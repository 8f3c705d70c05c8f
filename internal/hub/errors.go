package hub

import (
	"errors"
	"fmt"
	"net/http"
)

// Errors callers branch on with errors.Is. The wrapped message says which
// file, digest or limit was involved.
var (
	ErrNotHubDir      = errors.New("hub: directory is not a hub store")
	ErrLayoutVersion  = errors.New("hub: unsupported store layout version")
	ErrDigestMismatch = errors.New("hub: content does not match its digest")
	ErrTooLarge       = errors.New("hub: content exceeds the size limit")
	ErrBlobUnknown    = errors.New("hub: blob not stored")
	ErrCorrupt        = errors.New("hub: stored content no longer matches its digest")
	ErrTooManyUploads = errors.New("hub: too many uploads in progress")

	ErrBadHubURL   = errors.New("hub: bad hub URL")
	ErrInsecure    = errors.New("hub: plain HTTP to a hub that is not on this machine")
	ErrUnreachable = errors.New("hub: not reachable")
	ErrBadSource   = errors.New("hub: not an OCI image layout directory or a tar archive")
	ErrBadRepo     = errors.New("hub: invalid repository name")
	ErrBadTag      = errors.New("hub: invalid tag")
	ErrBadRef      = errors.New("hub: not an image named by a tag in the hub")
	ErrTagUnknown  = errors.New("hub: no such tag")
)

// apiError is an error response of the distribution API: an HTTP status and
// one entry of the {"errors": [...]} body that OCI clients parse.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return fmt.Sprintf("%d %s: %s", e.status, e.code, e.msg) }

func errNotFound() *apiError {
	return &apiError{http.StatusNotFound, "NOT_FOUND", "no such route in the distribution API"}
}

func errMethod(method string) *apiError {
	return &apiError{http.StatusMethodNotAllowed, "UNSUPPORTED", "method " + method + " is not supported here"}
}

func errNameInvalid(name string) *apiError {
	return &apiError{http.StatusBadRequest, "NAME_INVALID", fmt.Sprintf("invalid repository name %q", name)}
}

func errNameUnknown(name string) *apiError {
	return &apiError{http.StatusNotFound, "NAME_UNKNOWN", fmt.Sprintf("repository %q is not known", name)}
}

func errDigestInvalid(msg string) *apiError {
	return &apiError{http.StatusBadRequest, "DIGEST_INVALID", msg}
}

func errTagInvalid(tag string) *apiError {
	return &apiError{http.StatusBadRequest, "MANIFEST_INVALID", fmt.Sprintf("invalid tag %q", tag)}
}

func errManifestUnknown(ref string) *apiError {
	return &apiError{http.StatusNotFound, "MANIFEST_UNKNOWN", fmt.Sprintf("manifest %q is not known", ref)}
}

func errManifestInvalid(msg string) *apiError {
	return &apiError{http.StatusBadRequest, "MANIFEST_INVALID", msg}
}

func errManifestBlobUnknown(msg string) *apiError {
	return &apiError{http.StatusBadRequest, "MANIFEST_BLOB_UNKNOWN", msg}
}

func errUploadUnknown() *apiError {
	return &apiError{http.StatusNotFound, "BLOB_UPLOAD_UNKNOWN", "upload session is not known (finished, cancelled, expired, or the hub restarted): start a new one"}
}

func errUploadInvalid(msg string) *apiError {
	return &apiError{http.StatusBadRequest, "BLOB_UPLOAD_INVALID", msg}
}

func errTooLarge(msg string) *apiError {
	return &apiError{http.StatusRequestEntityTooLarge, "SIZE_INVALID", msg}
}

func errBusy() *apiError {
	return &apiError{http.StatusTooManyRequests, "TOO_MANY_REQUESTS", "too many uploads in progress: retry later"}
}

func errInternal() *apiError {
	return &apiError{http.StatusInternalServerError, "UNKNOWN", "internal error: see the hub's log"}
}

func errUnsupported(msg string) *apiError {
	return &apiError{http.StatusMethodNotAllowed, "UNSUPPORTED", msg}
}
