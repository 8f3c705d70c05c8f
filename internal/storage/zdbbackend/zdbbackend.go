// Package zdbbackend is a storage.Backend over a zdb server (internal/zdb,
// or any 0-db-compatible server that also has FSYNC): one object is one key
// of one namespace in user mode, its content the key's value.
//
// Every pooled connection authenticates with the SECURE challenge–response
// (AUTH SECURE CHALLENGE, then SELECT ns SECURE hex(sha1(nonce:password))),
// so the namespace password never crosses the wire. The connection then
// reads NSINFO and refuses a namespace that has a password but is public
// (readable by anyone without it): ErrPublicNamespace, with the NSSET
// command that makes it private. Put is SET then FSYNC,
// pipelined in one round trip, so an object is durable when Put returns
// even on a server running with --sync batch.
//
// Objects are limited to zdb's value size, zdb.MaxValueSize (8 MiB): a
// larger Put is refused with ErrTooLarge (which also matches
// storage.ErrFull, as no space will ever hold it) and writes nothing.
// Splitting objects into chunks would give up the single-SET atomicity
// that storage.Backend promises readers.
//
// Wire format and threat model: docs/formats/zdb.md. There is no TLS:
// run zdb on localhost or over the encrypted overlay.
package zdbbackend

import (
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zerogrid/zerogrid/internal/storage"
	"github.com/zerogrid/zerogrid/internal/zdb"
)

// ErrTooLarge: the object is larger than a zdb value may be. Permanent; it
// also matches storage.ErrFull.
var ErrTooLarge = errors.New("zdbbackend: object larger than the zdb value limit")

// MaxObjectSize is the largest object Put accepts: zdb's value limit.
const MaxObjectSize = zdb.MaxValueSize

// DefaultTimeout bounds dialing and each read or write on the connection
// when Config.Timeout is zero.
const DefaultTimeout = 10 * time.Second

// Config configures a Backend.
type Config struct {
	ID        string        // backend id for segment references; a storage.ValidName
	Domain    string        // failure-domain label; may be empty
	Address   string        // host:port of the zdb server
	Namespace string        // namespace holding the objects; it must exist
	Password  string        // namespace password; empty for a namespace without one
	Timeout   time.Duration // dial and per-I/O timeout; 0: DefaultTimeout
}

// String describes the config without the password.
func (c Config) String() string {
	return fmt.Sprintf("zdb backend %s (namespace %q at %s)", c.ID, c.Namespace, c.Address)
}

func (c Config) validate() error {
	if err := storage.ValidName(c.ID); err != nil {
		return fmt.Errorf("zdbbackend: config field ID: %w", err)
	}
	switch {
	case c.Address == "":
		return fmt.Errorf("zdbbackend: backend %s: config field Address is empty (want host:port of the zdb server)", c.ID)
	case c.Namespace == "":
		return fmt.Errorf("zdbbackend: backend %s: config field Namespace is empty", c.ID)
	case c.Timeout < 0:
		return fmt.Errorf("zdbbackend: backend %s: config field Timeout is negative (%v)", c.ID, c.Timeout)
	}
	return nil
}

// Backend stores objects in one zdb namespace. It is safe for concurrent
// use; connections are pooled and each is authenticated when it is opened.
type Backend struct {
	cfg Config
	rdb *redis.Client
}

var _ storage.Backend = (*Backend)(nil)

// New returns a backend for cfg. It does not connect: the first call
// does, so a backend can be set up while its server is down. Close
// releases its connections.
func New(cfg Config) (*Backend, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = DefaultTimeout
	}
	b := &Backend{cfg: cfg}
	b.rdb = redis.NewClient(&redis.Options{
		Addr:     cfg.Address,
		Protocol: 2, // zdb speaks RESP2 only
		// No CLIENT SETINFO: zdb does not know it.
		DisableIdentity:       true,
		DialTimeout:           cfg.Timeout,
		ReadTimeout:           cfg.Timeout,
		WriteTimeout:          cfg.Timeout,
		ContextTimeoutEnabled: true,
		// A stale pooled connection (the server restarted) is retried once;
		// every command we send may be repeated (Backend's idempotence).
		MaxRetries: 1,
		// A refused dial is reported at once: the caller decides when to
		// retry (ErrUnavailable), not the pool.
		DialerRetries: 1,
		OnConnect:     b.authenticate,
	})
	return b, nil
}

// ID returns the configured id.
func (b *Backend) ID() string { return b.cfg.ID }

// Domain returns the configured failure-domain label.
func (b *Backend) Domain() string { return b.cfg.Domain }

// String describes the backend without the password.
func (b *Backend) String() string { return b.cfg.String() }

// Close closes the pooled connections. The backend is unusable after.
func (b *Backend) Close() error { return b.rdb.Close() }
