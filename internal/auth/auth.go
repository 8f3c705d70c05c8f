// Package auth is zerogrid's access for people: passkey sign-in verified
// against a twin's device set on the ledger, short-lived sessions bound to
// a twin and the device that signed in, and single-use challenges for
// everything a passkey signs (sign-in, transactions).
//
// Nothing here keeps an account or a secret that lets anyone in: a
// sign-in is a WebAuthn assertion (user verification required) by a
// passkey that the twin's key log on the ledger lists as current, checked
// with the same code the ledger uses for passkey-signed transactions
// (ledger.VerifyAssertion). A session is a random token in memory; losing
// the memory signs everyone out and leaks nothing usable elsewhere.
package auth

import "errors"

// Errors callers branch on. Every refusal wraps one of them with the cause.
var (
	ErrNoSession      = errors.New("auth: not signed in")
	ErrCSRF           = errors.New("auth: missing or wrong CSRF token: reload the page and try again")
	ErrUnknownFlow    = errors.New("auth: this request is unknown, used or expired: start again")
	ErrNotAuthorized  = errors.New("auth: refused")
	ErrNoPasskey      = errors.New("auth: the twin has no current passkey for this portal: register one first")
	ErrDeviceRevoked  = errors.New("auth: the device this session signed in with is no longer current on the ledger")
	ErrCounterReplay  = errors.New("auth: the passkey's signature counter did not advance: a replayed assertion or a cloned passkey")
	ErrTooManyPending = errors.New("auth: too many pending requests: wait a minute")
)
