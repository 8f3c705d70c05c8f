package s3gw

import "errors"

// Errors of request authentication. Every one is answered with an S3
// error (403 unless noted) whose message says what was wrong.
var (
	// ErrMalformedAuth: the request carries no Signature Version 4
	// Authorization header, or a malformed one.
	ErrMalformedAuth = errors.New("s3gw: missing or malformed Signature Version 4 authorization")
	// ErrUnknownKey: the access key id is not this server's user's.
	ErrUnknownKey = errors.New("s3gw: unknown access key id")
	// ErrSignature: the signature does not match the request.
	ErrSignature = errors.New("s3gw: signature does not match")
	// ErrSkew: the request's time is too far from the server's.
	ErrSkew = errors.New("s3gw: request time too far from the server's clock")
	// ErrReplay: a state-changing request was seen before.
	ErrReplay = errors.New("s3gw: request replayed")
	// ErrPayload: the body does not match the signed payload hash or a
	// chunk signature (the request is cut off, nothing is stored).
	ErrPayload = errors.New("s3gw: body does not match its signature")
)
