package ledger

import (
	"errors"
	"fmt"
)

// Code is the ABCI result code of a rejected transaction. Codes are part of
// the wire contract: clients branch on them, so they never change meaning.
type Code uint32

// Result codes. 0 is success.
const (
	CodeOK           Code = 0
	CodeMalformed    Code = 1  // bytes do not decode or the shape is wrong
	CodeBadSignature Code = 2  // a signature does not verify
	CodeExpired      Code = 3  // past its expiry, or expiry too far ahead
	CodeBadSequence  Code = 4  // sequence is not the account's next (replay or gap)
	CodeUnauthorized Code = 5  // the signer may not do this
	CodeNotFound     Code = 6  // the object named does not exist
	CodeConflict     Code = 7  // already exists, wrong generation, wrong state
	CodeInvalid      Code = 8  // well-formed but not acceptable (bad spec, bad name)
	CodeNoCapacity   Code = 9  // the node cannot fit the contract
	CodeRevokedKey   Code = 10 // the signing key was revoked
	CodeWrongChain   Code = 11 // the transaction names another chain
	CodeUnknownKey   Code = 12 // no account has this key
)

// Codespace names zerogrid's codes in ABCI results.
const Codespace = "zerogrid"

var codeNames = map[Code]string{
	CodeOK: "ok", CodeMalformed: "malformed", CodeBadSignature: "bad signature",
	CodeExpired: "expired", CodeBadSequence: "bad sequence", CodeUnauthorized: "unauthorized",
	CodeNotFound: "not found", CodeConflict: "conflict", CodeInvalid: "invalid",
	CodeNoCapacity: "no capacity", CodeRevokedKey: "revoked key", CodeWrongChain: "wrong chain",
	CodeUnknownKey: "unknown key",
}

// String names the code.
func (c Code) String() string {
	if n, ok := codeNames[c]; ok {
		return n
	}
	return fmt.Sprintf("code %d", uint32(c))
}

// Rejection is a transaction refused with a code and a reason a person can
// act on. The executor returns only Rejections for tx-caused failures.
type Rejection struct {
	Code   Code
	Reason string
}

func (r *Rejection) Error() string { return r.Code.String() + ": " + r.Reason }

// Is makes errors.Is(err, &Rejection{Code: c}) match on code alone.
func (r *Rejection) Is(target error) bool {
	var t *Rejection
	return errors.As(target, &t) && t.Code == r.Code && t.Reason == ""
}

func reject(c Code, format string, args ...any) *Rejection {
	return &Rejection{Code: c, Reason: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of err: the Rejection's, or CodeMalformed for any
// other error.
func CodeOf(err error) Code {
	if err == nil {
		return CodeOK
	}
	var r *Rejection
	if errors.As(err, &r) {
		return r.Code
	}
	return CodeMalformed
}

// ErrCorruptState is returned when stored state cannot be decoded; it is
// never caused by a transaction and stops the validator.
var ErrCorruptState = errors.New("ledger: stored state is corrupt")

// ErrStateVersion is returned when the database holds state of another
// format version than this build reads.
var ErrStateVersion = errors.New("ledger: state format version differs")

// ErrBadProof is returned when a query answer's proof does not verify:
// it is malformed, does not hash to the trusted app hash, or does not cover
// what the query reads. The validator that served it cannot be trusted for
// that answer.
var ErrBadProof = errors.New("ledger: the answer's proof does not verify")

// ReasonOf is the reason of a Rejection, or err's text for other errors.
func ReasonOf(err error) string {
	var r *Rejection
	if errors.As(err, &r) {
		return r.Reason
	}
	return err.Error()
}
