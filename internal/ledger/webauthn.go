package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"

	"github.com/go-webauthn/webauthn/protocol/webauthncose"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/wire"
)

// Passkeys (WebAuthn credentials) are devices of a twin. A passkey sits in
// the twin's key log like a device key, under a *handle*: a 32-byte name
// derived from the twin and the credential id (PasskeyHandle), which takes
// the place of an ed25519 key in Sig.Key, KeyRef and revocation. A handle
// is not a point anyone holds a private key for, so no ed25519 signature
// ever verifies under it: a passkey signs only through a WebAuthn assertion
// (Sig.WebAuthn) whose challenge is the digest the signature covers.

// Tags and bounds of passkeys.
const (
	TagPasskeyHandle   = "passkey-handle"
	MaxCredentialBytes = 1023 // WebAuthn's bound on a credential id
	MinCredentialBytes = 16
	MaxCOSEKeyBytes    = 256
	MaxOriginLen       = 256
	MaxAuthDataBytes   = 1024
	MaxClientDataBytes = 2048
	MaxAssertionSig    = 128
)

// Passkey is what the ledger keeps of a WebAuthn credential: its id, its
// COSE public key (ES256 or EdDSA/Ed25519), the one origin and RP id it
// signs for, and the highest signature counter it has shown.
type Passkey struct {
	Credential []byte `cbor:"cred" json:"credential"`
	PublicKey  []byte `cbor:"cose" json:"-"`
	Origin     string `cbor:"origin" json:"origin"`
	RPID       string `cbor:"rp_id" json:"rp_id"`
	Counter    uint32 `cbor:"counter,omitempty" json:"counter"`
	LastUsed   int64  `cbor:"last_used,omitempty" json:"last_used_height,omitempty"`
}

// TwinAddPasskey adds a passkey to the signing twin. Any current key of
// the twin may sign it: the root, a device key or another passkey.
type TwinAddPasskey struct {
	Name       string `cbor:"name,omitempty"`
	Credential []byte `cbor:"cred"`
	PublicKey  []byte `cbor:"cose"`
	Origin     string `cbor:"origin"`
	RPID       string `cbor:"rp_id"`
}

// Assertion is a WebAuthn assertion standing in for an ed25519 signature:
// the authenticator signed AuthData || SHA-256(ClientData), and ClientData's
// challenge is the base64url of the digest being signed.
type Assertion struct {
	AuthData   []byte `cbor:"auth"`
	ClientData []byte `cbor:"client"`
	Sig        []byte `cbor:"sig"`
}

// handleInput is what a passkey handle is derived from.
type handleInput struct {
	Twin       uint64 `cbor:"twin"`
	Credential []byte `cbor:"cred"`
}

// PasskeyHandle names a twin's passkey where a key is expected. Binding
// the twin in means the same credential id registered by someone else on
// another twin is another handle: it can block nothing and sign nothing.
func PasskeyHandle(twin uint64, credential []byte) identity.PublicKey {
	d, err := wire.Digest(TagPasskeyHandle, TxVersion, handleInput{Twin: twin, Credential: credential})
	if err != nil {
		panic(err) // a fixed struct always encodes
	}
	return identity.PublicKey(d)
}

// ClientData is the part of a WebAuthn clientDataJSON the ledger checks.
type ClientData struct {
	Type        string `json:"type"`
	Challenge   string `json:"challenge"`
	Origin      string `json:"origin"`
	CrossOrigin bool   `json:"crossOrigin"`
	TopOrigin   string `json:"topOrigin"`
}

// ParsedAssertion is an assertion's decoded, shape-checked fields.
type ParsedAssertion struct {
	RPIDHash  [32]byte
	Flags     byte
	Counter   uint32
	Client    ClientData
	Challenge [32]byte
}

// WebAuthn authenticator data flags.
const (
	flagUP = 0x01
	flagUV = 0x04
	flagAT = 0x40
)

// ParseAssertion decodes an assertion's authenticator data and client data
// (untrusted bytes) without checking its signature. It requires a "get"
// ceremony, a 32-byte challenge, and user presence and verification.
func ParseAssertion(a *Assertion) (*ParsedAssertion, error) {
	switch {
	case len(a.AuthData) < 37 || len(a.AuthData) > MaxAuthDataBytes:
		return nil, fmt.Errorf("authenticator data is %d bytes, want 37..%d", len(a.AuthData), MaxAuthDataBytes)
	case len(a.ClientData) > MaxClientDataBytes:
		return nil, fmt.Errorf("client data is %d bytes, limit %d", len(a.ClientData), MaxClientDataBytes)
	case len(a.Sig) == 0 || len(a.Sig) > MaxAssertionSig:
		return nil, fmt.Errorf("assertion signature is %d bytes, want 1..%d", len(a.Sig), MaxAssertionSig)
	}
	p := &ParsedAssertion{Flags: a.AuthData[32], Counter: binary.BigEndian.Uint32(a.AuthData[33:37])}
	copy(p.RPIDHash[:], a.AuthData[:32])
	switch {
	case p.Flags&flagAT != 0:
		return nil, fmt.Errorf("authenticator data carries a new credential: this is a registration, not an assertion")
	case p.Flags&flagUP == 0:
		return nil, fmt.Errorf("the authenticator did not see the user present")
	case p.Flags&flagUV == 0:
		return nil, fmt.Errorf("the authenticator did not verify the user (PIN or biometric): user verification is required")
	}
	dec := json.NewDecoder(bytes.NewReader(a.ClientData))
	if err := dec.Decode(&p.Client); err != nil {
		return nil, fmt.Errorf("client data is not JSON: %v", err)
	}
	if p.Client.Type != "webauthn.get" {
		return nil, fmt.Errorf("client data type is %q, want webauthn.get", p.Client.Type)
	}
	if p.Client.CrossOrigin || p.Client.TopOrigin != "" {
		return nil, fmt.Errorf("the assertion was made in a cross-origin frame")
	}
	ch, err := base64.RawURLEncoding.DecodeString(p.Client.Challenge)
	if err != nil || len(ch) != len(p.Challenge) {
		return nil, fmt.Errorf("client data challenge is not 32 bytes of base64url")
	}
	copy(p.Challenge[:], ch)
	return p, nil
}

// ParsePasskeyKey parses a COSE public key and refuses every algorithm but
// ES256 (P-256) and EdDSA (Ed25519).
func ParsePasskeyKey(cose []byte) (any, error) {
	if len(cose) == 0 || len(cose) > MaxCOSEKeyBytes {
		return nil, fmt.Errorf("COSE key is %d bytes, want 1..%d", len(cose), MaxCOSEKeyBytes)
	}
	k, err := webauthncose.ParsePublicKey(cose)
	if err != nil {
		return nil, fmt.Errorf("COSE key does not parse: %v", err)
	}
	switch k := k.(type) {
	case webauthncose.EC2PublicKeyData:
		if k.Algorithm == int64(webauthncose.AlgES256) && k.Curve == int64(webauthncose.P256) {
			return k, nil
		}
	case webauthncose.OKPPublicKeyData:
		if k.Algorithm == int64(webauthncose.AlgEdDSA) && k.Curve == int64(webauthncose.Ed25519) {
			return k, nil
		}
	}
	return nil, fmt.Errorf("passkey algorithm is not ES256 (P-256) or EdDSA (Ed25519)")
}

// VerifyAssertion checks an assertion by pk over challenge: shape, ceremony,
// challenge, origin, RP id, user presence and verification, and the
// signature. It returns the authenticator's signature counter; checking it
// against the last one seen is the caller's (it needs state).
func VerifyAssertion(pk *Passkey, a *Assertion, challenge [32]byte) (uint32, error) {
	p, err := ParseAssertion(a)
	if err != nil {
		return 0, err
	}
	if p.Challenge != challenge {
		return 0, fmt.Errorf("the assertion was made for another challenge: it signs something else")
	}
	if p.Client.Origin != pk.Origin {
		return 0, fmt.Errorf("the assertion was made on origin %q, the passkey is registered for %q", p.Client.Origin, pk.Origin)
	}
	if p.RPIDHash != sha256.Sum256([]byte(pk.RPID)) {
		return 0, fmt.Errorf("the assertion is for another relying party than %q", pk.RPID)
	}
	key, err := ParsePasskeyKey(pk.PublicKey)
	if err != nil {
		return 0, err
	}
	h := sha256.Sum256(a.ClientData)
	signed := append(append([]byte(nil), a.AuthData...), h[:]...)
	if ok, err := webauthncose.VerifySignature(key, signed, a.Sig); !ok || err != nil {
		return 0, fmt.Errorf("the passkey's signature does not verify")
	}
	return p.Counter, nil
}

// counterAdvances applies WebAuthn's clone check: a counter that is in use
// (either side non-zero) must grow with every assertion.
func counterAdvances(stored, got uint32) bool {
	return (stored == 0 && got == 0) || got > stored
}

// passkeyEntry finds the passkey entry named by handle in t.
func (t *Twin) passkeyEntry(handle identity.PublicKey) *KeyEntry {
	e := t.keyEntry(handle)
	if e == nil || e.Passkey == nil {
		return nil
	}
	return e
}

// VerifySignatureBy checks sig over wire.Digest(tag, TxVersion, v) as a
// signature of twin t: by an ed25519 key (root or device) or, when
// sig.WebAuthn is set, by one of t's passkeys. It does not check that the
// key is current (ActiveKey) or, for a passkey, that its counter advanced.
// It returns the passkey's counter (0 for ed25519).
func VerifySignatureBy(t *Twin, tag string, v any, sig Sig) (uint32, error) {
	if sig.WebAuthn == nil {
		return 0, sig.Key.Verify(tag, TxVersion, v, sig.Sig)
	}
	e := t.passkeyEntry(sig.Key)
	if e == nil {
		return 0, fmt.Errorf("%s is not a passkey of twin %d", sig.Key, t.ID)
	}
	if sig.Sig != (identity.Signature{}) {
		return 0, fmt.Errorf("a passkey signature carries its assertion, not an ed25519 signature")
	}
	d, err := wire.Digest(tag, TxVersion, v)
	if err != nil {
		return 0, err
	}
	return VerifyAssertion(e.Passkey, sig.WebAuthn, d)
}

// VerifySpecSig checks an owner's deployment signature with a key that is
// current for the owner now: what a node checks before it runs anything.
func VerifySpecSig(owner *Twin, d Deployment, sig Sig) error {
	if !owner.ActiveKey(sig.Key) {
		return fmt.Errorf("the spec is signed by %s, which is not a current key of twin %d", sig.Key, owner.ID)
	}
	if _, err := VerifySignatureBy(owner, TagDeployment, d, sig); err != nil {
		return fmt.Errorf("the owner's signature does not verify over this deployment: %v", err)
	}
	return nil
}

// checkOrigin accepts an https origin (or http on a loopback name, for a
// grid on one machine) whose host is the RP id or below it.
func checkOrigin(origin, rpID string) error {
	u, err := url.Parse(origin)
	if err != nil || u.Host == "" || u.Path != "" || u.RawQuery != "" || u.User != nil || u.Fragment != "" {
		return fmt.Errorf("origin %q is not scheme://host[:port]", origin)
	}
	host := u.Hostname()
	if u.Scheme != "https" && !(u.Scheme == "http" && (host == "localhost" || strings.HasSuffix(host, ".localhost"))) {
		return fmt.Errorf("origin %q must be https", origin)
	}
	if rpID == "" || (host != rpID && !strings.HasSuffix(host, "."+rpID)) {
		return fmt.Errorf("RP id %q is not the origin's host %q or a parent of it", rpID, host)
	}
	return nil
}

func execTwinAddPasskey(ctx *execCtx, acct *account, op *TwinAddPasskey) error {
	t, err := requireTwin(acct, "adding a passkey")
	if err != nil {
		return err
	}
	switch {
	case len(op.Credential) < MinCredentialBytes || len(op.Credential) > MaxCredentialBytes:
		return reject(CodeInvalid, "credential id is %d bytes, want %d..%d", len(op.Credential), MinCredentialBytes, MaxCredentialBytes)
	case len(op.Origin) > MaxOriginLen || len(op.Name) > 64:
		return reject(CodeInvalid, "origin (at most %d bytes) or name (at most 64) is too long", MaxOriginLen)
	case len(t.Keys) >= MaxDeviceKeys:
		return reject(CodeInvalid, "twin %d already has %d devices (limit %d)", t.ID, len(t.Keys), MaxDeviceKeys)
	}
	if err := checkOrigin(op.Origin, op.RPID); err != nil {
		return reject(CodeInvalid, "%v", err)
	}
	if _, err := ParsePasskeyKey(op.PublicKey); err != nil {
		return reject(CodeInvalid, "%v", err)
	}
	handle := PasskeyHandle(t.ID, op.Credential)
	if found, err := getObj(ctx.st, kKey(handle), &KeyRef{}); err != nil {
		return err
	} else if found {
		return reject(CodeConflict, "this passkey is already a device of twin %d", t.ID)
	}
	pk := &Passkey{Credential: op.Credential, PublicKey: op.PublicKey, Origin: op.Origin, RPID: op.RPID}
	t.Keys = append(t.Keys, KeyEntry{Key: handle, Name: op.Name, Added: ctx.height, Passkey: pk})
	if err := putObj(ctx.st, kTwin(t.ID), t); err != nil {
		return err
	}
	if err := putObj(ctx.st, kKey(handle), KeyRef{Twin: t.ID}); err != nil {
		return err
	}
	ctx.emit("twin", "id", u(t.ID), "action", "add_passkey", "key", handle.String())
	return ctx.setResult(TxResult{ID: t.ID})
}

// passkeyUse is a passkey's counter shown by a transaction's assertions.
type passkeyUse struct {
	handle  identity.PublicKey
	counter uint32
}

// checkPasskeySigner verifies a passkey-signed transaction against the
// signer's entry: the assertion over the transaction's ID, and a counter
// that advanced. A passkey's handle signs nothing without an assertion.
func checkPasskeySigner(ctx *execCtx, tx *Tx, acct *account) error {
	s := tx.Sigs[0]
	if acct.twin == nil {
		if s.WebAuthn != nil {
			return reject(CodeUnauthorized, "only a twin's passkey signs with an assertion")
		}
		return nil
	}
	e := acct.twin.passkeyEntry(s.Key)
	if e == nil && s.WebAuthn == nil {
		return nil
	}
	if e == nil || s.WebAuthn == nil {
		return reject(CodeBadSignature, "key %s and its signature are of different kinds (passkey or ed25519)", s.Key)
	}
	id, err := tx.ID()
	if err != nil {
		return err
	}
	n, err := VerifyAssertion(e.Passkey, s.WebAuthn, id)
	if err != nil {
		return reject(CodeBadSignature, "passkey of twin %d: %v", acct.twin.ID, err)
	}
	if !counterAdvances(e.Passkey.Counter, n) {
		return reject(CodeBadSignature, "passkey counter %d does not exceed %d, the last seen: the assertion is replayed or the passkey was cloned", n, e.Passkey.Counter)
	}
	ctx.passkeys = append(ctx.passkeys, passkeyUse{handle: s.Key, counter: n})
	return nil
}

// checkSpecSig is checkDeployment's signature check: VerifySpecSig, plus
// the counter rule for a passkey (noted on ctx, recorded with the tx's).
func checkSpecSig(ctx *execCtx, owner *Twin, d Deployment, sig Sig) error {
	if err := VerifySpecSig(owner, d, sig); err != nil {
		if !owner.ActiveKey(sig.Key) {
			return reject(CodeUnauthorized, "%v", err)
		}
		return reject(CodeBadSignature, "%v (twin %d, node %d, generation %d)", err, d.Twin, d.Node, d.Generation)
	}
	if sig.WebAuthn == nil {
		return nil
	}
	e := owner.passkeyEntry(sig.Key)
	n, _ := ParseAssertion(sig.WebAuthn) // verified above
	if !counterAdvances(e.Passkey.Counter, n.Counter) {
		return reject(CodeBadSignature, "passkey counter %d on the spec signature does not exceed %d, the last seen", n.Counter, e.Passkey.Counter)
	}
	ctx.passkeys = append(ctx.passkeys, passkeyUse{handle: sig.Key, counter: n.Counter})
	return nil
}

// recordPasskeyUse stores the highest counter each passkey showed in the
// transaction, and the height it was used at.
func recordPasskeyUse(ctx *execCtx, acct *account) error {
	if len(ctx.passkeys) == 0 || acct.twin == nil {
		return nil
	}
	t, err := loadTwin(ctx.st, acct.twin.ID)
	if err != nil {
		return err
	}
	for _, use := range ctx.passkeys {
		if e := t.passkeyEntry(use.handle); e != nil {
			e.Passkey.Counter = max(e.Passkey.Counter, use.counter)
			e.Passkey.LastUsed = ctx.height
		}
	}
	return putObj(ctx.st, kTwin(t.ID), t)
}

// verifyAssertionShape is the stateless part of checking a passkey-signed
// transaction: a well-formed assertion over this transaction's ID.
func (tx *Tx) verifyAssertionShape() error {
	s := tx.Sigs[0]
	if s.Sig != (identity.Signature{}) {
		return reject(CodeMalformed, "a passkey signature carries its assertion, not an ed25519 signature")
	}
	p, err := ParseAssertion(s.WebAuthn)
	if err != nil {
		return reject(CodeBadSignature, "passkey assertion: %v", err)
	}
	id, err := tx.ID()
	if err != nil {
		return reject(CodeMalformed, "%v", err)
	}
	if p.Challenge != id {
		return reject(CodeBadSignature, "the passkey assertion was made for another challenge than this transaction's ID")
	}
	return nil
}
