package auth

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/wire"
)

// TagSignIn is the domain tag of a portal sign-in challenge.
const TagSignIn = "portal-signin"

// ChallengeTTL bounds how long a browser has to answer a challenge.
const ChallengeTTL = 2 * time.Minute

// Twins reads twins; the portal passes the verified ledger client
// (*client.Client), so a revoked device is refused from the block that
// revoked it on. Implementations must be safe for concurrent use.
type Twins interface {
	Twin(ctx context.Context, id uint64) (*ledger.Twin, error)
}

// SignIn is what a sign-in assertion signs: the portal's origin, the twin,
// a fresh nonce and an expiry, as wire.Digest(TagSignIn, 1, SignIn).
type SignIn struct {
	Origin  string `cbor:"origin"`
	Twin    uint64 `cbor:"twin"`
	Nonce   []byte `cbor:"nonce"`
	Expires int64  `cbor:"exp"`
}

// PasskeyConfig names the portal as a WebAuthn relying party.
type PasskeyConfig struct {
	Origin string // https://portal.grid.localhost:8443
	RPID   string // portal.grid.localhost
	Name   string // shown by the authenticator
	Now    func() time.Time
}

// Passkeys runs passkey registration and sign-in for one origin. Safe for
// concurrent use.
type Passkeys struct {
	cfg    PasskeyConfig
	twins  Twins
	wa     *webauthn.WebAuthn
	signIn *Flows[pendingSignIn]
	reg    *Flows[pendingReg]

	mu       sync.Mutex
	counters map[identity.PublicKey]uint32 // highest counter seen at sign-in
}

type pendingSignIn struct {
	twin   uint64
	digest [32]byte
}

type pendingReg struct {
	twin    uint64
	name    string
	session webauthn.SessionData
}

// NewPasskeys checks cfg and makes the relying party.
func NewPasskeys(cfg PasskeyConfig, twins Twins) (*Passkeys, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Name == "" {
		cfg.Name = "zerogrid portal"
	}
	wa, err := webauthn.New(&webauthn.Config{RPID: cfg.RPID, RPDisplayName: cfg.Name, RPOrigins: []string{cfg.Origin}})
	if err != nil {
		return nil, fmt.Errorf("auth: relying party %s at %s: %w", cfg.RPID, cfg.Origin, err)
	}
	return &Passkeys{cfg: cfg, twins: twins, wa: wa, signIn: NewFlows[pendingSignIn](cfg.Now),
		reg: NewFlows[pendingReg](cfg.Now), counters: map[identity.PublicKey]uint32{}}, nil
}

// Config is the relying party's configuration.
func (p *Passkeys) Config() PasskeyConfig { return p.cfg }

// Current returns twin t's passkeys that are not revoked and were
// registered for this portal's origin.
func (p *Passkeys) Current(t *ledger.Twin) []ledger.KeyEntry {
	var out []ledger.KeyEntry
	for _, e := range t.Keys {
		if e.Passkey != nil && e.Revoked == 0 && e.Passkey.Origin == p.cfg.Origin && e.Passkey.RPID == p.cfg.RPID {
			out = append(out, e)
		}
	}
	return out
}

// RequestOptions are the options of navigator.credentials.get for a
// challenge, user verification required, allowing the given credentials.
func (p *Passkeys) RequestOptions(challenge [32]byte, creds [][]byte) map[string]any {
	allow := make([]map[string]any, len(creds))
	for i, c := range creds {
		allow[i] = map[string]any{"type": "public-key", "id": base64.RawURLEncoding.EncodeToString(c)}
	}
	return map[string]any{
		"challenge": base64.RawURLEncoding.EncodeToString(challenge[:]), "rpId": p.cfg.RPID,
		"allowCredentials": allow, "userVerification": "required", "timeout": int(ChallengeTTL / time.Millisecond),
	}
}

// BeginSignIn makes a sign-in challenge for twin: a flow id and the
// options for navigator.credentials.get.
func (p *Passkeys) BeginSignIn(ctx context.Context, twin uint64) (string, map[string]any, error) {
	t, err := p.twins.Twin(ctx, twin)
	if err != nil {
		return "", nil, fmt.Errorf("twin %d: %w", twin, err)
	}
	keys := p.Current(t)
	if len(keys) == 0 {
		return "", nil, ErrNoPasskey
	}
	var creds [][]byte
	for _, e := range keys {
		creds = append(creds, e.Passkey.Credential)
	}
	si := SignIn{Origin: p.cfg.Origin, Twin: twin, Nonce: []byte(RandomToken()), Expires: p.cfg.Now().Add(ChallengeTTL).Unix()}
	d, err := wire.Digest(TagSignIn, 1, si)
	if err != nil {
		return "", nil, err
	}
	id, err := p.signIn.Put(pendingSignIn{twin: twin, digest: d}, ChallengeTTL)
	if err != nil {
		return "", nil, err
	}
	return id, p.RequestOptions(d, creds), nil
}

// FinishSignIn checks the browser's answer to a sign-in challenge against
// the twin's device set as the ledger has it now, and returns the twin and
// the passkey's handle. The challenge is used up whatever the outcome.
func (p *Passkeys) FinishSignIn(ctx context.Context, flow string, response []byte) (uint64, identity.PublicKey, error) {
	f, err := p.signIn.Take(flow)
	if err != nil {
		return 0, identity.PublicKey{}, err
	}
	handle, counter, err := p.VerifyResponse(ctx, f.twin, f.digest, response)
	if err != nil {
		return 0, identity.PublicKey{}, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if seen := p.counters[handle]; (seen != 0 || counter != 0) && counter <= seen {
		return 0, identity.PublicKey{}, ErrCounterReplay
	}
	p.counters[handle] = counter
	return f.twin, handle, nil
}

// VerifyResponse checks a navigator.credentials.get response over digest
// by a current passkey of twin (read now, verified), including the
// ledger's counter, and returns the passkey's handle and counter.
func (p *Passkeys) VerifyResponse(ctx context.Context, twin uint64, digest [32]byte, response []byte) (identity.PublicKey, uint32, error) {
	cred, a, err := ParseResponse(response)
	if err != nil {
		return identity.PublicKey{}, 0, err
	}
	t, err := p.twins.Twin(ctx, twin)
	if err != nil {
		return identity.PublicKey{}, 0, fmt.Errorf("twin %d: %w", twin, err)
	}
	handle := ledger.PasskeyHandle(twin, cred)
	var entry *ledger.KeyEntry
	for i, e := range t.Keys {
		if e.Key.Equal(handle) && e.Passkey != nil {
			entry = &t.Keys[i]
		}
	}
	switch {
	case entry == nil:
		return identity.PublicKey{}, 0, fmt.Errorf("%w: this passkey is not a device of twin %d", ErrNotAuthorized, twin)
	case entry.Revoked != 0:
		return identity.PublicKey{}, 0, fmt.Errorf("%w: this passkey was revoked at height %d", ErrNotAuthorized, entry.Revoked)
	}
	n, err := ledger.VerifyAssertion(entry.Passkey, a, digest)
	if err != nil {
		return identity.PublicKey{}, 0, fmt.Errorf("%w: %v", ErrNotAuthorized, err)
	}
	if c := entry.Passkey.Counter; (c != 0 || n != 0) && n <= c {
		return identity.PublicKey{}, 0, ErrCounterReplay
	}
	return handle, n, nil
}

// ParseResponse decodes a navigator.credentials.get response (JSON, as the
// portal's script sends it: base64url fields) into the credential id and
// the assertion the ledger checks.
func ParseResponse(body []byte) ([]byte, *ledger.Assertion, error) {
	par, err := protocol.ParseCredentialRequestResponseBytes(body)
	if err != nil {
		return nil, nil, fmt.Errorf("%w: the passkey's answer does not parse: %v", ErrNotAuthorized, err)
	}
	r := par.Raw.AssertionResponse
	return par.RawID, &ledger.Assertion{AuthData: r.AuthenticatorData, ClientData: r.ClientDataJSON, Sig: r.Signature}, nil
}

// twinUser is a twin as go-webauthn's registration sees it: the user
// handle is the twin id (8 bytes, big endian).
type twinUser struct {
	id    uint64
	creds []webauthn.Credential
}

func (u twinUser) WebAuthnID() []byte {
	return binary.BigEndian.AppendUint64(nil, u.id)
}
func (u twinUser) WebAuthnName() string                       { return "twin " + strconv.FormatUint(u.id, 10) }
func (u twinUser) WebAuthnDisplayName() string                { return u.WebAuthnName() }
func (u twinUser) WebAuthnCredentials() []webauthn.Credential { return u.creds }

// BeginRegistration makes the options for navigator.credentials.create of
// a new passkey for twin: user verification required, ES256 or Ed25519,
// a discoverable credential preferred, the twin's passkeys excluded.
func (p *Passkeys) BeginRegistration(ctx context.Context, twin uint64, name string) (string, any, error) {
	t, err := p.twins.Twin(ctx, twin)
	if err != nil {
		return "", nil, fmt.Errorf("twin %d: %w", twin, err)
	}
	var exclude []protocol.CredentialDescriptor
	for _, e := range p.Current(t) {
		exclude = append(exclude, protocol.CredentialDescriptor{Type: protocol.PublicKeyCredentialType, CredentialID: e.Passkey.Credential})
	}
	creation, session, err := p.wa.BeginRegistration(twinUser{id: twin},
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{
			ResidentKey: protocol.ResidentKeyRequirementPreferred, UserVerification: protocol.VerificationRequired}),
		webauthn.WithCredentialParameters([]protocol.CredentialParameter{
			{Type: protocol.PublicKeyCredentialType, Algorithm: -7}, {Type: protocol.PublicKeyCredentialType, Algorithm: -8}}),
		webauthn.WithConveyancePreference(protocol.PreferNoAttestation),
		webauthn.WithExclusions(exclude))
	if err != nil {
		return "", nil, err
	}
	id, err := p.reg.Put(pendingReg{twin: twin, name: name, session: *session}, ChallengeTTL)
	if err != nil {
		return "", nil, err
	}
	return id, creation.Response, nil
}

// FinishRegistration checks a navigator.credentials.create response (the
// challenge, origin, RP id, user verification, attestation format) and
// returns the ledger operation that adds the passkey to the twin. The
// portal cannot submit it: a current key of the twin must sign it.
func (p *Passkeys) FinishRegistration(flow string, response []byte) (uint64, *ledger.TwinAddPasskey, error) {
	f, err := p.reg.Take(flow)
	if err != nil {
		return 0, nil, err
	}
	par, err := protocol.ParseCredentialCreationResponseBytes(response)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: the new passkey's answer does not parse: %v", ErrNotAuthorized, err)
	}
	cred, err := p.wa.CreateCredential(twinUser{id: f.twin}, f.session, par)
	if err != nil {
		return 0, nil, fmt.Errorf("%w: the new passkey does not check: %v", ErrNotAuthorized, err)
	}
	if _, err := ledger.ParsePasskeyKey(cred.PublicKey); err != nil {
		return 0, nil, fmt.Errorf("%w: %v", ErrNotAuthorized, err)
	}
	return f.twin, &ledger.TwinAddPasskey{Name: f.name, Credential: cred.ID, PublicKey: cred.PublicKey, Origin: p.cfg.Origin, RPID: p.cfg.RPID}, nil
}
