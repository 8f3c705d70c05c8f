package zdbbackend

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"
)

// authError is a server's refusal of the handshake of a new connection
// (a wrong password, a missing namespace). It becomes ErrUnavailable:
// the operator may fix the server or the config, and the same call may
// then succeed.
type authError struct {
	namespace, address string
	reply              error // the server's error reply; never holds a secret
}

func (e *authError) Error() string {
	hint := "check the namespace password in the backend config"
	if e.reply.Error() == "Namespace not found" {
		hint = "create the namespace on the server (NSNEW) or fix the Namespace in the backend config"
	}
	return fmt.Sprintf("authentication to namespace %q at %s failed: server replied %q (%s)", e.namespace, e.address, e.reply, hint)
}

// Unwrap has the multi-error form on purpose: go-redis strips one level of
// errors.Unwrap from an OnConnect error, which would drop authError and
// its message; errors.Unwrap ignores this form, errors.Is and As do not.
func (e *authError) Unwrap() []error { return []error{e.reply} }

// authenticate is go-redis's OnConnect hook: it runs on every new pooled
// connection before any command. With a password it uses the challenge
// form, so only hex(sha1(nonce ":" password)) crosses the wire, good for
// this one nonce on this one connection.
func (b *Backend) authenticate(ctx context.Context, cn *redis.Conn) error {
	args := []any{"SELECT", b.cfg.Namespace}
	if b.cfg.Password != "" {
		nonce, err := cn.Do(ctx, "AUTH", "SECURE", "CHALLENGE").Text()
		if err != nil {
			return b.handshakeErr(err)
		}
		args = append(args, "SECURE", secureResponse(nonce, b.cfg.Password))
	}
	if err := cn.Do(ctx, args...).Err(); err != nil {
		return b.handshakeErr(err)
	}
	return nil
}

// handshakeErr keeps network errors as they are (go-redis retries those)
// and wraps the server's refusals.
func (b *Backend) handshakeErr(err error) error {
	var reply redis.Error
	if errors.As(err, &reply) && !errors.Is(err, redis.Nil) {
		return &authError{namespace: b.cfg.Namespace, address: b.cfg.Address, reply: err}
	}
	return err
}

// secureResponse is 0-db's challenge response: hex(SHA-1(nonce ":" password)).
// SHA-1 is the protocol's choice, not ours; docs/formats/zdb.md explains
// what it protects and what it does not.
func secureResponse(nonce, password string) string {
	sum := sha1.Sum([]byte(nonce + ":" + password))
	return hex.EncodeToString(sum[:])
}
