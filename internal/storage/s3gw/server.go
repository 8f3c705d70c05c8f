package s3gw

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"os"
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
	// SpoolDir holds the parts of multipart uploads until they complete
	// (one subdirectory per upload, 0700). Empty: a temporary directory,
	// removed when ctx ends.
	SpoolDir string
}

// New returns the S3 handler over cfg.Store: Signature Version 4 checked
// on every request, then gofakes3 over the store, with multipart uploads
// spooled to disk. ctx bounds the store operations of every request (the
// server's lifetime).
func New(ctx context.Context, cfg Config) (http.Handler, error) {
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	now := cfg.Now
	if now == nil {
		now = time.Now
	}
	dir := cfg.SpoolDir
	if dir == "" {
		var err error
		if dir, err = os.MkdirTemp("", "zgrid-s3-spool-"); err != nil {
			return nil, fmt.Errorf("s3gw: spool directory: %w", err)
		}
		context.AfterFunc(ctx, func() { os.RemoveAll(dir) })
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("s3gw: spool directory: %w", err)
	}
	b := &backend{ctx: ctx, s: cfg.Store, log: log, now: now, bufs: &bufPool{size: cfg.Store.SegmentSize()},
		spool: &spool{dir: dir, ups: map[gofakes3.UploadID]*upload{}}}
	fake := gofakes3.New(b,
		gofakes3.WithoutVersioning(),
		gofakes3.WithTimeSource(timeSource{now}),
		gofakes3.WithTimeSkewLimit(DefaultSkew),
		gofakes3.WithLogger(gofakes3.DiscardLog()),
	)
	return NewAuthenticator(cfg.Users, now, log).Wrap(fake.Server()), nil
}

type timeSource struct{ now func() time.Time }

func (t timeSource) Now() time.Time                  { return t.now() }
func (t timeSource) Since(u time.Time) time.Duration { return t.now().Sub(u) }
