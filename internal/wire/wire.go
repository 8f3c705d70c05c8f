// Package wire defines zerogrid's canonical encoding and the digests that
// every signature in the system covers.
//
// Every signed object is encoded as deterministic CBOR (RFC 8949 §4.2.1, core
// deterministic encoding: shortest-form integers, definite lengths, map keys
// sorted bytewise), and hashed with SHA-256 behind a domain-separation tag
// and a format version:
//
//	digest = SHA-256( "zerogrid" || 0x00 || tag || 0x00 || uint16be(version) || cbor(v) )
//
// The tag names what the bytes are (a transaction, a spec, a device
// certificate), so a signature made for one purpose can never be replayed as
// another. Decoding is strict: unknown fields, duplicate map keys,
// indefinite lengths, tags and any encoding that is not byte-for-byte the
// canonical one are rejected, so each value has exactly one encoding and one
// digest.
package wire

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"reflect"

	"github.com/fxamacker/cbor/v2"
)

// Limits on untrusted input. They bound the work a decoder does on hostile
// bytes; honest objects are far smaller.
const (
	MaxNesting   = 16
	MaxArrayLen  = 4096
	MaxMapPairs  = 4096
	MaxInputSize = 1 << 20
)

// ErrNotCanonical is returned when bytes decode but are not the canonical
// encoding of the value they hold.
var ErrNotCanonical = errors.New("wire: encoding is not canonical")

// ErrTooLarge is returned for input above MaxInputSize.
var ErrTooLarge = errors.New("wire: input too large")

var encMode, decMode = mustModes()

func mustModes() (cbor.EncMode, cbor.DecMode) {
	eo := cbor.CoreDetEncOptions()
	eo.Time = cbor.TimeUnix
	em, err := eo.EncMode()
	if err != nil {
		panic(err) // static options: a programming error
	}
	do := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   MaxNesting,
		MaxArrayElements:  MaxArrayLen,
		MaxMapPairs:       MaxMapPairs,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		UTF8:              cbor.UTF8RejectInvalid,
		IntDec:            cbor.IntDecConvertNone,
		DefaultMapType:    reflect.TypeOf(map[string]any(nil)),
	}
	dm, err := do.DecMode()
	if err != nil {
		panic(err)
	}
	return em, dm
}

// Marshal returns the canonical CBOR encoding of v.
func Marshal(v any) ([]byte, error) {
	b, err := encMode.Marshal(v)
	if err != nil {
		return nil, fmt.Errorf("wire: encode %T: %w", v, err)
	}
	return b, nil
}

// Unmarshal decodes canonical CBOR into v, a non-nil pointer whose target
// is reset to its zero value first. It rejects trailing bytes, unknown
// fields and any encoding that differs from what Marshal would produce for
// the decoded value.
func Unmarshal(data []byte, v any) error {
	if len(data) > MaxInputSize {
		return ErrTooLarge
	}
	rv := reflect.ValueOf(v)
	if rv.Kind() != reflect.Pointer || rv.IsNil() {
		return fmt.Errorf("wire: decode into non-pointer %T", v)
	}
	rv.Elem().SetZero()
	rest, err := decMode.UnmarshalFirst(data, v)
	if err != nil {
		return fmt.Errorf("wire: decode %T: %w", v, err)
	}
	if len(rest) != 0 {
		return fmt.Errorf("wire: decode %T: %d trailing bytes", v, len(rest))
	}
	again, err := Marshal(v)
	if err != nil {
		return err
	}
	if !bytes.Equal(again, data) {
		return ErrNotCanonical
	}
	return nil
}

// CheckCanonical reports whether raw is a single well-formed canonical CBOR
// item (of any shape). Use it on opaque embedded values (cbor.RawMessage),
// which Unmarshal passes through without re-encoding.
func CheckCanonical(raw []byte) error {
	var v any
	return Unmarshal(raw, &v)
}

// Preimage returns the bytes that Digest hashes: the fixed prefix, the tag,
// the version and the canonical encoding of v.
func Preimage(tag string, version uint16, v any) ([]byte, error) {
	if tag == "" || bytes.IndexByte([]byte(tag), 0) >= 0 {
		return nil, fmt.Errorf("wire: invalid domain tag %q", tag)
	}
	body, err := Marshal(v)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	buf.Grow(len("zerogrid") + len(tag) + 4 + len(body))
	buf.WriteString("zerogrid")
	buf.WriteByte(0)
	buf.WriteString(tag)
	buf.WriteByte(0)
	var ver [2]byte
	binary.BigEndian.PutUint16(ver[:], version)
	buf.Write(ver[:])
	buf.Write(body)
	return buf.Bytes(), nil
}

// Digest is SHA-256 over Preimage(tag, version, v). It is what signatures
// in zerogrid are made over.
func Digest(tag string, version uint16, v any) ([32]byte, error) {
	p, err := Preimage(tag, version, v)
	if err != nil {
		return [32]byte{}, err
	}
	return sha256.Sum256(p), nil
}
