package auth

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"slices"
	"sync"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
)

// DefaultSessionTTL is how long a session lasts from sign-in. There is no
// renewal: a person signs in again with the passkey.
const DefaultSessionTTL = 30 * time.Minute

// Session is one signed-in browser: a twin, the device (passkey handle or
// device key) that signed in, and a CSRF token every form must carry.
type Session struct {
	ID      string // short public id (hash prefix of the token), shown in lists
	Twin    uint64
	Device  identity.PublicKey
	Method  string // "passkey" or "number-matching"
	Created time.Time
	Expires time.Time
	Remote  string // browser address at sign-in
	Agent   string // browser user agent at sign-in
	CSRF    string
}

// Sessions holds the live sessions by the SHA-256 of their token (the
// cookie value never sits in memory as a map key). Safe for concurrent use.
type Sessions struct {
	mu  sync.Mutex
	ttl time.Duration
	now func() time.Time
	m   map[[32]byte]*Session
}

// NewSessions makes an empty store; ttl 0 means DefaultSessionTTL, now nil
// means time.Now.
func NewSessions(ttl time.Duration, now func() time.Time) *Sessions {
	if ttl == 0 {
		ttl = DefaultSessionTTL
	}
	if now == nil {
		now = time.Now
	}
	return &Sessions{ttl: ttl, now: now, m: map[[32]byte]*Session{}}
}

// TTL is the sessions' lifetime.
func (s *Sessions) TTL() time.Duration { return s.ttl }

// Create starts a session and returns it with the token for the cookie.
func (s *Sessions) Create(twin uint64, device identity.PublicKey, method, remote, agent string) (Session, string) {
	token := RandomToken()
	h := sha256.Sum256([]byte(token))
	now := s.now()
	sess := &Session{
		ID: hex.EncodeToString(h[:6]), Twin: twin, Device: device, Method: method,
		Created: now, Expires: now.Add(s.ttl), Remote: remote, Agent: agent, CSRF: RandomToken(),
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	s.m[h] = sess
	return *sess, token
}

// Lookup returns the live session of a cookie token, or ErrNoSession.
func (s *Sessions) Lookup(token string) (Session, error) {
	h := sha256.Sum256([]byte(token))
	s.mu.Lock()
	defer s.mu.Unlock()
	sess, ok := s.m[h]
	if !ok {
		return Session{}, ErrNoSession
	}
	if s.now().After(sess.Expires) {
		delete(s.m, h)
		return Session{}, ErrNoSession
	}
	return *sess, nil
}

// End ends the session of token (sign-out).
func (s *Sessions) End(token string) {
	h := sha256.Sum256([]byte(token))
	s.mu.Lock()
	defer s.mu.Unlock()
	delete(s.m, h)
}

// Revoke ends twin's session with public id; it reports whether there was
// one. A twin can revoke only its own sessions.
func (s *Sessions) Revoke(twin uint64, id string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	for h, sess := range s.m {
		if sess.Twin == twin && sess.ID == id {
			delete(s.m, h)
			return true
		}
	}
	return false
}

// RevokeDevice ends every session of twin signed in with device.
func (s *Sessions) RevokeDevice(twin uint64, device identity.PublicKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for h, sess := range s.m {
		if sess.Twin == twin && sess.Device.Equal(device) {
			delete(s.m, h)
		}
	}
}

// List returns twin's live sessions, oldest first.
func (s *Sessions) List(twin uint64) []Session {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	var out []Session
	for h, sess := range s.m {
		if now.After(sess.Expires) {
			delete(s.m, h)
			continue
		}
		if sess.Twin == twin {
			out = append(out, *sess)
		}
	}
	slices.SortFunc(out, func(a, b Session) int { return a.Created.Compare(b.Created) })
	return out
}

// CheckCSRF compares a submitted token with the session's in constant time.
func (sess Session) CheckCSRF(got string) error {
	if got == "" || subtle.ConstantTimeCompare([]byte(got), []byte(sess.CSRF)) != 1 {
		return ErrCSRF
	}
	return nil
}
