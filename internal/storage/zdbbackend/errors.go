package zdbbackend

import (
	"context"
	"errors"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/zerogrid/zerogrid/internal/storage"
	"github.com/zerogrid/zerogrid/internal/zdb"
)

// fail turns an error of a call into one wrapped around a storage
// sentinel, prefixed with the backend, the operation and the name:
//
//   - the caller's context ended: ctx.Err() (a cancelled call);
//   - the server refused the connection's handshake, or the namespace is
//     public (ErrPublicNamespace): ErrUnavailable;
//   - "No space left on this namespace": ErrFull;
//   - any other error reply, a network error, a timeout: ErrUnavailable.
//
// The result never holds the password: no message we build contains it
// and the server never sends it.
func (b *Backend) fail(ctx context.Context, op, name string, err error) error {
	where := fmt.Sprintf("zdb backend %s: %s %q", b.cfg.ID, op, name)
	if name == "" && op == "list" {
		where = fmt.Sprintf("zdb backend %s: %s", b.cfg.ID, op)
	}
	var auth *authError
	var public *publicError
	var reply redis.Error
	switch {
	case ctx.Err() != nil:
		return fmt.Errorf("%s: %w", where, ctx.Err())
	case errors.As(err, &auth), errors.As(err, &public):
		return fmt.Errorf("%s: %w: %w", where, storage.ErrUnavailable, err)
	case zdb.IsNamespaceFull(err):
		return fmt.Errorf("%s: %w: namespace %q: %w", where, storage.ErrFull, b.cfg.Namespace, err)
	case errors.As(err, &reply):
		return fmt.Errorf("%s: %w: server %s replied: %w", where, storage.ErrUnavailable, b.cfg.Address, err)
	default:
		return fmt.Errorf("%s: %w: zdb server at %s: %w", where, storage.ErrUnavailable, b.cfg.Address, err)
	}
}

// isReply reports whether err is the server's error reply with exactly
// this text.
func isReply(err, want error) bool {
	var reply redis.Error
	return errors.As(err, &reply) && reply.Error() == want.Error()
}
