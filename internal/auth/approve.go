package auth

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"sync"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
)

// Number matching: a browser asks to sign in and shows two digits; the
// person runs `zgrid login approve`, which fetches the twin's pending
// requests (an outbound call, signed by a device key), shows the portal's
// origin, the browser's address and time, asks which number the browser
// shows, and signs an Approval with the device key. The portal signs the
// browser in only with the right number, signed by a current key of the
// twin; three wrong numbers cancel the request.

// Domain tags of the signed objects of number matching.
const (
	TagLoginApproval = "login-approval"
	TagLoginPending  = "login-pending"
)

// Bounds of number matching.
const (
	LoginTTL       = 2 * time.Minute
	MaxAttempts    = 3
	MaxPendingTwin = 8 // open requests per twin
	maxQueryAhead  = time.Minute
)

// Errors of number matching.
var (
	ErrWrongNumber = errors.New("auth: that is not the number the browser shows")
	ErrCancelled   = errors.New("auth: three wrong numbers: the sign-in request is cancelled; start again in the browser")
)

// Approval is what a device key signs to let a browser in: the request,
// the portal's origin, the number the person read off the browser, and
// the request's expiry. It names one request on one portal only.
type Approval struct {
	Request string `cbor:"request" json:"request"`
	Origin  string `cbor:"origin" json:"origin"`
	Twin    uint64 `cbor:"twin" json:"twin"`
	Number  uint8  `cbor:"number" json:"number"`
	Expires int64  `cbor:"exp" json:"exp"`
}

// PendingQuery is what a device key signs to list its twin's pending
// requests: the portal, the twin, a nonce and an expiry under a minute.
type PendingQuery struct {
	Origin  string `cbor:"origin" json:"origin"`
	Twin    uint64 `cbor:"twin" json:"twin"`
	Nonce   []byte `cbor:"nonce" json:"nonce"`
	Expires int64  `cbor:"exp" json:"exp"`
}

// Signed is a value with a device key's signature, as sent over HTTP.
type Signed[T any] struct {
	Value T                  `json:"value"`
	Key   identity.PublicKey `json:"key"`
	Sig   identity.Signature `json:"sig"`
}

// LoginRequest is one browser's pending sign-in, as the approver sees it
// (without the number: the person reads that off the browser).
type LoginRequest struct {
	ID      string    `json:"id"`
	Origin  string    `json:"origin"`
	Twin    uint64    `json:"twin"`
	Remote  string    `json:"remote"`
	Agent   string    `json:"agent"`
	Created time.Time `json:"created"`
	Expires int64     `json:"exp"`
}

type loginState struct {
	LoginRequest
	number   uint8
	poll     string // held by the browser that asked
	attempts int
	device   identity.PublicKey // set once approved
}

// Logins holds pending number-matching requests. Safe for concurrent use.
type Logins struct {
	origin string
	twins  Twins
	now    func() time.Time

	mu     sync.Mutex
	m      map[string]*loginState
	nonces map[string]int64 // pending-query nonces until their expiry
}

// NewLogins makes the store of a portal at origin.
func NewLogins(origin string, twins Twins, now func() time.Time) *Logins {
	if now == nil {
		now = time.Now
	}
	return &Logins{origin: origin, twins: twins, now: now, m: map[string]*loginState{}, nonces: map[string]int64{}}
}

// Request opens a sign-in request for twin from a browser and returns the
// request, the two-digit number to show and the poll secret only that
// browser holds.
func (l *Logins) Request(twin uint64, remote, agent string) (LoginRequest, uint8, string, error) {
	n, err := rand.Int(rand.Reader, big.NewInt(90))
	if err != nil {
		return LoginRequest{}, 0, "", err
	}
	id := make([]byte, 16)
	_, _ = rand.Read(id)
	now := l.now()
	st := &loginState{LoginRequest: LoginRequest{ID: hex.EncodeToString(id), Origin: l.origin, Twin: twin, Remote: remote,
		Agent: agent, Created: now, Expires: now.Add(LoginTTL).Unix()}, number: uint8(10 + n.Int64()), poll: RandomToken()}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep()
	open := 0
	for _, s := range l.m {
		if s.Twin == twin {
			open++
		}
	}
	if open >= MaxPendingTwin || len(l.m) >= MaxFlows {
		return LoginRequest{}, 0, "", ErrTooManyPending
	}
	l.m[st.ID] = st
	return st.LoginRequest, st.number, st.poll, nil
}

// sweep drops expired requests and nonces; l.mu is held.
func (l *Logins) sweep() {
	now := l.now().Unix()
	for id, s := range l.m {
		if now > s.Expires {
			delete(l.m, id)
		}
	}
	for n, exp := range l.nonces {
		if now > exp {
			delete(l.nonces, n)
		}
	}
}

// verify checks a device key's signature and that the key is current for
// twin on the ledger now (verified read).
func (l *Logins) verify(ctx context.Context, twin uint64, tag string, v any, key identity.PublicKey, sig identity.Signature) error {
	if err := key.Verify(tag, 1, v, sig); err != nil {
		return fmt.Errorf("%w: the signature does not verify", ErrNotAuthorized)
	}
	t, err := l.twins.Twin(ctx, twin)
	if err != nil {
		return fmt.Errorf("twin %d: %w", twin, err)
	}
	if !t.ActiveKey(key) {
		return fmt.Errorf("%w: %s is not a current key of twin %d", ErrNotAuthorized, key, twin)
	}
	return nil
}

// Pending lists twin's open requests for a signed query.
func (l *Logins) Pending(ctx context.Context, q Signed[PendingQuery]) ([]LoginRequest, error) {
	now := l.now().Unix()
	switch {
	case q.Value.Origin != l.origin:
		return nil, fmt.Errorf("%w: the query is for %s, this portal is %s", ErrNotAuthorized, q.Value.Origin, l.origin)
	case q.Value.Expires < now || q.Value.Expires > now+int64(maxQueryAhead/time.Second):
		return nil, fmt.Errorf("%w: the query expired or expires too late: check this machine's clock", ErrNotAuthorized)
	case len(q.Value.Nonce) < 16 || len(q.Value.Nonce) > 64:
		return nil, fmt.Errorf("%w: the query's nonce must be 16..64 bytes", ErrNotAuthorized)
	}
	if err := l.verify(ctx, q.Value.Twin, TagLoginPending, q.Value, q.Key, q.Sig); err != nil {
		return nil, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep()
	if _, used := l.nonces[string(q.Value.Nonce)]; used {
		return nil, fmt.Errorf("%w: the query was replayed", ErrNotAuthorized)
	}
	l.nonces[string(q.Value.Nonce)] = q.Value.Expires
	var out []LoginRequest
	for _, s := range l.m {
		if s.Twin == q.Value.Twin && s.device.IsZero() {
			out = append(out, s.LoginRequest)
		}
	}
	slices.SortFunc(out, func(a, b LoginRequest) int { return a.Created.Compare(b.Created) })
	return out, nil
}

// Approve checks a signed approval. The right number approves the request
// for the signing device; a wrong one counts, and the third cancels it.
// It returns the attempts left after a wrong number.
func (l *Logins) Approve(ctx context.Context, a Signed[Approval]) (int, error) {
	if a.Value.Origin != l.origin {
		return 0, fmt.Errorf("%w: the approval is for %s, this portal is %s", ErrNotAuthorized, a.Value.Origin, l.origin)
	}
	if err := l.verify(ctx, a.Value.Twin, TagLoginApproval, a.Value, a.Key, a.Sig); err != nil {
		return 0, err
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep()
	s, ok := l.m[a.Value.Request]
	switch {
	case !ok:
		return 0, fmt.Errorf("%w: no such pending request (it expired, was cancelled or was used)", ErrUnknownFlow)
	case s.Twin != a.Value.Twin || s.Expires != a.Value.Expires || !s.device.IsZero():
		return 0, fmt.Errorf("%w: the approval does not match the request", ErrNotAuthorized)
	case a.Value.Number != s.number:
		s.attempts++
		if s.attempts >= MaxAttempts {
			delete(l.m, s.ID)
			return 0, ErrCancelled
		}
		return MaxAttempts - s.attempts, ErrWrongNumber
	}
	s.device = a.Key
	return 0, nil
}

// Poll is the browser's question: has my request been approved? With the
// right poll secret it returns the approving device once, and the request
// is used up; before approval it returns a zero key; a cancelled or
// expired request is ErrUnknownFlow.
func (l *Logins) Poll(id, poll string) (LoginRequest, identity.PublicKey, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.sweep()
	s, ok := l.m[id]
	if !ok || subtle.ConstantTimeCompare([]byte(s.poll), []byte(poll)) != 1 {
		return LoginRequest{}, identity.PublicKey{}, ErrUnknownFlow
	}
	if s.device.IsZero() {
		return s.LoginRequest, identity.PublicKey{}, nil
	}
	delete(l.m, id)
	return s.LoginRequest, s.device, nil
}
