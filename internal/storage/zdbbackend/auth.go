package zdbbackend

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

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
	switch {
	case e.reply.Error() == "Namespace not found":
		hint = "create the namespace on the server (NSNEW) or fix the Namespace in the backend config"
	case errors.Is(e.reply, errNoAccessInfo):
		hint = "the backend must see who may read the namespace: point it at a zdb or 0-db server"
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
	info, err := cn.Do(ctx, "NSINFO", b.cfg.Namespace).Text()
	if err != nil {
		return b.handshakeErr(err)
	}
	return b.checkPrivate(info)
}

// ErrPublicNamespace: the namespace has a password but is public, so any
// client reads it without the password. Shard headers carry key shares:
// whoever reads k backends' namespaces decrypts the data, so the backend
// refuses such a namespace.
var ErrPublicNamespace = errors.New("zdbbackend: namespace is public: readable without its password")

// errNoAccessInfo: the server's NSINFO reply does not say whether the
// namespace is public.
var errNoAccessInfo = errors.New("NSINFO reply lacks the public or password field")

// publicError names the namespace, the server and the command that makes
// the namespace private.
type publicError struct{ namespace, address string }

func (e *publicError) Error() string {
	return fmt.Sprintf("namespace %q at %s is public: any client reads it without the password, and shard headers carry key shares; make it private with NSSET %s public 0 (as the zdb admin, e.g. redis-cli -h HOST -p PORT, AUTH, then NSSET)",
		e.namespace, e.address, e.namespace)
}

// Unwrap has the multi-error form for the reason given at authError.
func (e *publicError) Unwrap() []error { return []error{ErrPublicNamespace} }

// checkPrivate refuses a namespace whose NSINFO says it has a password and
// is public. A reply without the public and password lines is refused too:
// the backend cannot tell who may read.
func (b *Backend) checkPrivate(info string) error {
	fields := map[string]string{}
	for line := range strings.Lines(info) {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), ":"); ok {
			fields[k] = strings.TrimSpace(v)
		}
	}
	public, hasPublic := fields["public"]
	password, hasPassword := fields["password"]
	if !hasPublic || !hasPassword {
		return &authError{namespace: b.cfg.Namespace, address: b.cfg.Address, reply: errNoAccessInfo}
	}
	if public != "no" && password != "no" {
		return &publicError{namespace: b.cfg.Namespace, address: b.cfg.Address}
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
