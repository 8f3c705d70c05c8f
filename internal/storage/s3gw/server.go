package s3gw

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/johannesboyne/gofakes3"
)

// Config configures a gateway.
type Config struct {
	Store Store
	// Users are the key pairs accepted (DeriveCredentials of the store
	// owner's storage secret). At least one.
	Users  []Credentials
	Logger *slog.Logger     // nil discards
	Now    func() time.Time // nil means time.Now
}

// New returns the S3 handler over cfg.Store: Signature Version 4 checked
// on every request, then gofakes3 over the store. ctx bounds the store
// operations of every request (the server's lifetime).
func New(ctx context.Context, cfg Config) http.Handler {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	b := &backend{ctx: ctx, s: cfg.Store, log: log, now: now, bufs: &bufPool{size: cfg.Store.SegmentSize()}}
	fake := gofakes3.New(b,
		gofakes3.WithoutVersioning(),
		gofakes3.WithTimeSource(timeSource{now}),
		gofakes3.WithTimeSkewLimit(DefaultSkew),
		gofakes3.WithLogger(gofakes3.DiscardLog()),
	)
	return NewAuthenticator(cfg.Users, now, log).Wrap(fake.Server())
}

type timeSource struct{ now func() time.Time }

func (t timeSource) Now() time.Time                  { return t.now() }
func (t timeSource) Since(u time.Time) time.Duration { return t.now().Sub(u) }
