// Package passkeytest is a software WebAuthn authenticator for tests and
// benchmarks of code that checks passkey assertions without a browser. It
// makes real ES256 or Ed25519 signatures over real authenticator data and
// client data JSON, exactly as a browser would lay them out.
package passkeytest

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/asn1"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"math/big"

	"github.com/fxamacker/cbor/v2"
)

// Authenticator holds one credential. Its counter rises with every
// assertion, like a hardware key's.
type Authenticator struct {
	Credential []byte
	RPID       string
	Origin     string
	Counter    uint32
	ec         *ecdsa.PrivateKey
	ed         ed25519.PrivateKey
}

// New makes an ES256 credential for rpID and origin; ed25519 selects
// EdDSA instead.
func New(rpID, origin string, useEd25519 bool) *Authenticator {
	a := &Authenticator{Credential: make([]byte, 32), RPID: rpID, Origin: origin}
	_, _ = rand.Read(a.Credential)
	if useEd25519 {
		_, a.ed, _ = ed25519.GenerateKey(rand.Reader)
	} else {
		a.ec, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	}
	return a
}

// COSEKey is the credential's public key as a COSE_Key.
func (a *Authenticator) COSEKey() []byte {
	var m map[int]any
	if a.ed != nil {
		m = map[int]any{1: 1, 3: -8, -1: 6, -2: []byte(a.ed.Public().(ed25519.PublicKey))}
	} else {
		x, y := make([]byte, 32), make([]byte, 32)
		a.ec.X.FillBytes(x)
		a.ec.Y.FillBytes(y)
		m = map[int]any{1: 2, 3: -7, -1: 1, -2: x, -3: y}
	}
	b, err := cbor.Marshal(m)
	if err != nil {
		panic(err)
	}
	return b
}

// Options change what an assertion claims, to test refusals.
type Options struct {
	Origin  string // client data origin; default a.Origin
	RPID    string // hashed into authenticator data; default a.RPID
	NoUV    bool   // clear the user-verified flag
	Type    string // client data type; default webauthn.get
	Counter *uint32
}

// Assert signs challenge: it returns authenticator data, client data JSON
// and the signature over authData || SHA-256(clientData).
func (a *Authenticator) Assert(challenge []byte, o Options) (authData, clientData, sig []byte) {
	if o.Origin == "" {
		o.Origin = a.Origin
	}
	if o.RPID == "" {
		o.RPID = a.RPID
	}
	if o.Type == "" {
		o.Type = "webauthn.get"
	}
	a.Counter++
	n := a.Counter
	if o.Counter != nil {
		n = *o.Counter
	}
	rp := sha256.Sum256([]byte(o.RPID))
	flags := byte(0x01 | 0x04)
	if o.NoUV {
		flags = 0x01
	}
	authData = append(rp[:], flags, 0, 0, 0, 0)
	binary.BigEndian.PutUint32(authData[33:], n)
	clientData, _ = json.Marshal(map[string]any{
		"type": o.Type, "challenge": base64.RawURLEncoding.EncodeToString(challenge), "origin": o.Origin, "crossOrigin": false,
	})
	h := sha256.Sum256(clientData)
	signed := append(append([]byte(nil), authData...), h[:]...)
	if a.ed != nil {
		return authData, clientData, ed25519.Sign(a.ed, signed)
	}
	d := sha256.Sum256(signed)
	sig, err := ecdsa.SignASN1(rand.Reader, a.ec, d[:])
	if err != nil {
		panic(err)
	}
	return authData, clientData, sig
}

// HighS returns the other valid encoding of an ES256 signature (s → n−s),
// to test that a malleated signature gains nothing.
func HighS(sig []byte) []byte {
	var v struct{ R, S *big.Int }
	if _, err := asn1.Unmarshal(sig, &v); err != nil {
		return sig
	}
	v.S.Sub(elliptic.P256().Params().N, v.S)
	out, _ := asn1.Marshal(v)
	return out
}
