package overlay

import (
	"crypto/hkdf"
	"crypto/mlkem"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/wire"
)

// ControlPort is the UDP port of the key exchange on overlay addresses.
const ControlPort = 4431

// Limits and labels of the key exchange (docs/formats/overlay.md).
const (
	maxMessage  = 4096             // bytes of one datagram
	msgLifetime = 30 * time.Second // a message's expiry after it is made
	maxLifetime = 60 * time.Second // the furthest expiry accepted
	pskVersion  = 2
	pskInfo     = "zerogrid overlay psk v2"
	tagInit     = "overlay-psk-init"
	tagResp     = "overlay-psk-resp"
	tagConfirm  = "overlay-psk-confirm"
	tagAck      = "overlay-psk-ack"
)

// Errors of the key exchange.
var (
	ErrMessage = errors.New("overlay: bad key-exchange message")
	ErrStale   = errors.New("overlay: stale key-exchange message")
)

// header names the pair and the exchange; it starts every message.
type header struct {
	From    identity.PublicKey `cbor:"from"`
	To      identity.PublicKey `cbor:"to"`
	FromWG  Key                `cbor:"from_wg"`
	ToWG    Key                `cbor:"to_wg"`
	Epoch   uint64             `cbor:"epoch"`
	Expires int64              `cbor:"exp"`
}

// pskInit carries the initiator's ML-KEM-768 encapsulation key.
type pskInit struct {
	header
	EK []byte `cbor:"ek"`
}

// pskResp carries the ciphertext, bound to the init it answers.
type pskResp struct {
	header
	InitHash [32]byte `cbor:"init_hash"`
	CT       []byte   `cbor:"ct"`
}

// pskConfirm tells the responder that the initiator holds the key of the
// response with hash RespHash: the responder installs it.
type pskConfirm struct {
	header
	RespHash [32]byte `cbor:"resp_hash"`
}

// pskAck tells the initiator that the responder installed the key of the
// response with hash RespHash: the initiator installs it.
type pskAck struct {
	header
	RespHash [32]byte `cbor:"resp_hash"`
}

// envelope is one datagram: exactly one message and its signature.
type envelope struct {
	Init    *pskInit           `cbor:"init,omitempty"`
	Resp    *pskResp           `cbor:"resp,omitempty"`
	Confirm *pskConfirm        `cbor:"confirm,omitempty"`
	Ack     *pskAck            `cbor:"ack,omitempty"`
	Sig     identity.Signature `cbor:"sig"`
}

// decodeEnvelope parses a datagram and checks its shape (not its
// signature or freshness).
func decodeEnvelope(b []byte) (*envelope, error) {
	if len(b) > maxMessage {
		return nil, fmt.Errorf("%w: %d bytes", ErrMessage, len(b))
	}
	var e envelope
	if err := wire.Unmarshal(b, &e); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrMessage, err)
	}
	n := 0
	for _, present := range []bool{e.Init != nil, e.Resp != nil, e.Confirm != nil, e.Ack != nil} {
		if present {
			n++
		}
	}
	switch {
	case n != 1:
		return nil, fmt.Errorf("%w: want exactly one of init, resp, confirm and ack, got %d", ErrMessage, n)
	case e.Init != nil && len(e.Init.EK) != mlkem.EncapsulationKeySize768:
		return nil, fmt.Errorf("%w: encapsulation key of %d bytes", ErrMessage, len(e.Init.EK))
	case e.Resp != nil && len(e.Resp.CT) != mlkem.CiphertextSize768:
		return nil, fmt.Errorf("%w: ciphertext of %d bytes", ErrMessage, len(e.Resp.CT))
	}
	return &e, nil
}

// message returns the envelope's message, its header and its signature
// tag.
func (e *envelope) message() (any, header, string) {
	switch {
	case e.Init != nil:
		return e.Init, e.Init.header, tagInit
	case e.Resp != nil:
		return e.Resp, e.Resp.header, tagResp
	case e.Confirm != nil:
		return e.Confirm, e.Confirm.header, tagConfirm
	default:
		return e.Ack, e.Ack.header, tagAck
	}
}

// seal signs message m (a *pskInit, *pskResp, *pskConfirm or *pskAck)
// and encodes it as a datagram.
func seal(id identity.PrivateKey, m any) ([]byte, error) {
	e := &envelope{}
	var tag string
	switch m := m.(type) {
	case *pskInit:
		e.Init, tag = m, tagInit
	case *pskResp:
		e.Resp, tag = m, tagResp
	case *pskConfirm:
		e.Confirm, tag = m, tagConfirm
	case *pskAck:
		e.Ack, tag = m, tagAck
	default:
		return nil, fmt.Errorf("overlay: no key-exchange message %T", m)
	}
	sig, err := id.Sign(tag, pskVersion, m)
	if err != nil {
		return nil, err
	}
	e.Sig = sig
	return wire.Marshal(e)
}

// bodyHash is the SHA-256 of a message's canonical encoding, as the next
// message of the exchange binds it.
func bodyHash(m any) ([32]byte, []byte, error) {
	b, err := wire.Marshal(m)
	if err != nil {
		return [32]byte{}, nil, err
	}
	return sha256.Sum256(b), b, nil
}

// derivePSK is the pair's pre-shared key: HKDF-SHA256 of the ML-KEM
// shared secret, salted with the hash of both messages' encodings. It
// clears shared.
func derivePSK(shared, initBytes, respBytes []byte) (Key, error) {
	defer clear(shared)
	salt := sha256.Sum256(append(append([]byte{}, initBytes...), respBytes...))
	b, err := hkdf.Key(sha256.New, shared, salt[:], pskInfo, 32)
	if err != nil {
		return Key{}, err
	}
	k := Key(b)
	clear(b)
	return k, nil
}
