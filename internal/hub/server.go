package hub

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/google/go-containerregistry/pkg/registry"
)

// Defaults of Config.
const (
	DefaultMaxManifestBytes = 4 << 20 // what the distribution spec asks registries to accept
	DefaultMaxBlobBytes     = 2 << 30
	DefaultMaxUploads       = 32
	DefaultUploadIdle       = 30 * time.Minute
)

// Config configures a Server. Zero fields take the defaults.
type Config struct {
	// Dir holds the store; it is created if missing. See docs/formats/hub.md.
	Dir string
	// Logger receives one line per refused request and per pushed manifest
	// at info, and every request at debug. Nil discards.
	Logger *slog.Logger
	// MaxManifestBytes bounds a manifest; MaxBlobBytes a blob (a layer or a
	// config). Larger uploads are refused with 413.
	MaxManifestBytes int64
	MaxBlobBytes     int64
	// MaxUploads bounds the upload sessions in progress, so that their
	// temporary files use at most MaxUploads × MaxBlobBytes of disk.
	MaxUploads int
	// UploadIdle is how long an upload session may go without a request
	// before it is discarded.
	UploadIdle time.Duration
	// BootDir, if set, is served read-only under /boot/: the files a
	// machine boots from the network (see docs/boot.md).
	BootDir string
	// Now is the clock, Rand the source of upload ids (time.Now and
	// crypto/rand by default).
	Now  func() time.Time
	Rand io.Reader
	// Release, when set, serves everything under /tuf/ (the release
	// repository, internal/release.Handler).
	Release http.Handler
}

func (c *Config) setDefaults() {
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.MaxManifestBytes <= 0 {
		c.MaxManifestBytes = DefaultMaxManifestBytes
	}
	if c.MaxBlobBytes <= 0 {
		c.MaxBlobBytes = DefaultMaxBlobBytes
	}
	if c.MaxUploads <= 0 {
		c.MaxUploads = DefaultMaxUploads
	}
	if c.UploadIdle <= 0 {
		c.UploadIdle = DefaultUploadIdle
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
}

// Server is a hub: an OCI distribution registry whose store is a directory.
// Create one with New, then either Start it on an address or Serve it on a
// listener, or mount Handler in a server of your own; stop it with
// Shutdown. One process at a time may serve a directory.
type Server struct {
	cfg       Config
	log       *slog.Logger
	blobs     *blobStore
	manifests *manifestStore
	uploads   *uploads
	registry  http.Handler
	http      *http.Server
	boot      *bootFiles // nil without Config.BootDir

	mu       sync.Mutex
	addr     net.Addr
	serving  bool
	finished chan struct{}         // closed when a Start's Serve returns
	fresh    map[net.Conn]struct{} // connections that have not sent a request yet
}

// New opens (or creates) the store in cfg.Dir.
func New(cfg Config) (*Server, error) {
	cfg.setDefaults()
	if cfg.Dir == "" {
		return nil, fmt.Errorf("%w: no directory given", ErrNotHubDir)
	}
	if err := openLayout(cfg.Dir); err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger}
	tmp := filepath.Join(cfg.Dir, uploadsDir)
	s.blobs = &blobStore{dir: filepath.Join(cfg.Dir, filepath.FromSlash(blobsDir)), tmp: tmp, max: cfg.MaxBlobBytes}
	s.manifests = &manifestStore{repos: filepath.Join(cfg.Dir, reposDir), blobs: s.blobs, max: cfg.MaxManifestBytes}
	s.uploads = &uploads{dir: tmp, blobs: s.blobs, limit: cfg.MaxUploads, idle: cfg.UploadIdle,
		now: cfg.Now, rand: cfg.Rand, sessions: map[string]*session{}}
	if cfg.BootDir != "" {
		root, err := os.OpenRoot(cfg.BootDir)
		if err != nil {
			return nil, fmt.Errorf("hub boot directory: %w", err)
		}
		s.boot = &bootFiles{root: root, hub: s}
	}
	s.registry = registry.New(
		registry.WithBlobHandler(s.blobs),
		registry.Logger(slog.NewLogLogger(s.log.Handler(), slog.LevelDebug)),
	)
	s.http = &http.Server{
		Handler:           s.Handler(),
		ReadHeaderTimeout: 30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelWarn),
		ConnState:         s.trackConn,
	}
	s.fresh = map[net.Conn]struct{}{}
	s.http.RegisterOnShutdown(s.closeFresh)
	return s, nil
}

// trackConn remembers connections that have not sent a request.
// http.Server.Shutdown treats them as busy for 5 s; HTTP clients open them
// ahead of need and leave them unused, so the hub closes them at once.
func (s *Server) trackConn(c net.Conn, st http.ConnState) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if st == http.StateNew {
		s.fresh[c] = struct{}{}
	} else {
		delete(s.fresh, c)
	}
}

// closeFresh runs when Shutdown has closed the listeners.
func (s *Server) closeFresh() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.fresh {
		c.Close()
		delete(s.fresh, c)
	}
}

// Handler returns the hub's HTTP handler, to be mounted at the site root.
func (s *Server) Handler() http.Handler { return http.HandlerFunc(s.serveHTTP) }

// Serve answers requests on l until Shutdown, and then returns nil (at
// once if Shutdown came first). A server serves one listener: a second
// Serve is an error.
func (s *Server) Serve(l net.Listener) error {
	s.mu.Lock()
	if s.serving {
		s.mu.Unlock()
		return errors.New("hub: already serving")
	}
	s.serving, s.addr = true, l.Addr()
	s.mu.Unlock()
	s.log.Info("hub serving", "addr", l.Addr().String(), "dir", s.cfg.Dir)
	if err := s.http.Serve(l); !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// Start listens on addr (host:port; port 0 picks one) and serves in the
// background. Addr tells where it listens.
func (s *Server) Start(addr string) error {
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return fmt.Errorf("hub listen on %s: %w", addr, err)
	}
	done := make(chan struct{})
	s.mu.Lock()
	s.finished = done
	s.mu.Unlock()
	go func() {
		defer close(done)
		if err := s.Serve(l); err != nil {
			s.log.Error("hub stopped serving", "err", err)
		}
	}()
	// Serve records the address too, but perhaps after Start returns.
	s.mu.Lock()
	s.addr = l.Addr()
	s.mu.Unlock()
	return nil
}

// Addr is the address the server listens on, nil before Start or Serve.
func (s *Server) Addr() net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.addr
}

// Shutdown stops accepting connections, waits for requests in flight to
// finish or ctx to end, and (after Start) for the serving goroutine.
// Everything stored is already durable; uploads in progress are lost.
func (s *Server) Shutdown(ctx context.Context) error {
	err := s.http.Shutdown(ctx)
	if s.boot != nil {
		s.boot.root.Close()
	}
	s.mu.Lock()
	done := s.finished
	s.mu.Unlock()
	if done != nil {
		select {
		case <-done:
		case <-ctx.Done():
			return errors.Join(err, ctx.Err())
		}
	}
	return err
}
