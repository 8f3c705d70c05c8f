package zdb

import (
	"bytes"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"io"
)

// session is one client connection's state. It is used only by the
// goroutine that serves the connection.
type session struct {
	srv      *Server
	conn     *clientConn // what the session's buffers are charged to; nil in tests of commands
	remote   string
	ns       *Namespace // current namespace; nil only when the store is closed
	writable bool       // false after a password-less SELECT of a public protected namespace, and in a locked default
	admin    bool
	nonce    string // the pending AUTH SECURE CHALLENGE, used at most once
	failures int    // failed authentications on this connection
	closing  bool   // close the connection after this reply
}

func (s *Server) newSession(remote string) *session {
	c := &session{srv: s, remote: remote, writable: !s.protectDefault(), admin: s.cfg.AdminPassword == ""}
	c.ns, _ = s.store.Namespace(DefaultNamespace)
	return c
}

// protectDefault reports whether the default namespace is locked: read-only
// unless selected with the admin password.
func (s *Server) protectDefault() bool {
	return s.cfg.ProtectDefault && s.cfg.AdminPassword != ""
}

// access returns the password and public flag SELECT checks for ns: a
// locked default namespace has the admin password and is public.
func (s *Server) access(ns *Namespace) (password string, public bool, err error) {
	password, public, err = ns.access()
	if err == nil && ns.name == DefaultNamespace && s.protectDefault() {
		password, public = s.cfg.AdminPassword, true
	}
	return password, public, err
}

// nsGone reports whether the current namespace was deleted or closed.
func (c *session) nsGone() error {
	_, _, err := c.ns.access()
	return err
}

// current returns the session's namespace for a command on it.
func (c *session) current() (*Namespace, error) {
	if c.ns == nil {
		return nil, ErrClosed
	}
	return c.ns, nil
}

// writableNS returns the namespace for a command that changes it.
func (c *session) writableNS() (*Namespace, error) {
	ns, err := c.current()
	if err == nil && !c.writable {
		err = ErrReadOnly
	}
	return ns, err
}

func (c *session) requireAdmin() error {
	if !c.admin {
		c.srv.denied.Add(1)
		return ErrPermission
	}
	return nil
}

// challenge starts 0-db's challenge–response: a random nonce, good for one
// AUTH SECURE or SELECT … SECURE on this connection.
func (c *session) challenge() (string, error) {
	var b [16]byte
	if _, err := io.ReadFull(c.srv.cfg.Rand, b[:]); err != nil {
		return "", fmt.Errorf("%w: nonce: %w", ErrInternal, err)
	}
	c.nonce = hex.EncodeToString(b[:])
	return c.nonce, nil
}

// secureHash is 0-db's response: hex(SHA-1(nonce ":" password)).
func secureHash(nonce, password string) string {
	sum := sha1.Sum([]byte(nonce + ":" + password))
	return hex.EncodeToString(sum[:])
}

// checkSecure verifies a challenge response against secret. The nonce is
// spent whatever the outcome, so a response can never be replayed.
func (c *session) checkSecure(response []byte, secret, what string) error {
	if c.nonce == "" {
		return ErrNoChallenge
	}
	nonce := c.nonce
	c.nonce = ""
	if len(response) != sha1.Size*2 {
		return ErrBadHash
	}
	want := secureHash(nonce, secret)
	if subtle.ConstantTimeCompare(bytes.ToLower(response), []byte(want)) != 1 {
		return c.authFailed(what)
	}
	return nil
}

// checkPlain compares a password given in clear, in constant time.
func (c *session) checkPlain(given []byte, secret, what string) error {
	if subtle.ConstantTimeCompare(given, []byte(secret)) != 1 {
		return c.authFailed(what)
	}
	return nil
}

// authFailed counts a failed authentication; after maxAuthFailures the
// connection is closed, which slows down guessing over one connection.
func (c *session) authFailed(what string) error {
	c.failures++
	c.srv.denied.Add(1)
	c.srv.log.Warn("authentication failed", "remote", c.remote, "target", what, "failures", c.failures)
	if c.failures >= maxAuthFailures {
		c.closing = true
		return ErrTooManyAuthFailure
	}
	return ErrAccessDenied
}
