package fusefs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"

	"github.com/zerogrid/zerogrid/internal/storage"
	"github.com/zerogrid/zerogrid/internal/storage/catalog"
)

// Options configure a mount.
type Options struct {
	// CacheDir holds the spool files of files being written; it needs room
	// for the largest file written at once. Required.
	CacheDir string
	// CacheSegments is how many decoded segments reads keep; 0 means 4.
	CacheSegments int
	// Logger; nil discards.
	Logger *slog.Logger
	// Debug logs every FUSE request.
	Debug bool
	// AllowOther lets users other than the mounting one use the mount
	// (allow_other: a qsfs bind-mounted into a container whose users are
	// other host ids). Only root may set it without /etc/fuse.conf's
	// user_allow_other.
	AllowOther bool
}

// loadTimeout bounds one segment fetch, so a hung backend gives EIO rather
// than a stuck reader.
const loadTimeout = 2 * time.Minute

// attrTimeout is how long the kernel may cache names and attributes.
const attrTimeout = time.Second

// FS is the file system of one open store.
type FS struct {
	st       *catalog.Store
	cacheDir string
	log      *slog.Logger
	cache    *segCache
}

// New returns the root node of a file system over st. The caller keeps st
// open until the mount is gone, then calls Close.
func New(st *catalog.Store, opts Options) (*FS, fs.InodeEmbedder, error) {
	if opts.CacheDir == "" {
		return nil, nil, errors.New("fusefs: no cache directory for write spool files")
	}
	if err := os.MkdirAll(opts.CacheDir, 0o700); err != nil {
		return nil, nil, fmt.Errorf("fusefs: cache directory: %w", err)
	}
	n := opts.CacheSegments
	if n <= 0 {
		n = 4
	}
	f := &FS{st: st, cacheDir: opts.CacheDir, log: opts.Logger, cache: newSegCache(n)}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	return f, &dirNode{fsys: f}, nil
}

// Close cancels the segment loads in flight and waits for the read-ahead
// goroutines to end. Reads after Close fail.
func (f *FS) Close() { f.cache.close() }

// Server is a mounted FS: the FUSE server, and the FS whose background
// work stops with the mount.
type Server struct {
	*fuse.Server
	fsys *FS
}

// Unmount unmounts (it fails while files are open; files still being
// written are uploaded as the kernel releases them) and, once unmounted,
// closes the FS: no read-ahead goroutine outlives the mount.
func (s *Server) Unmount() error {
	if err := s.Server.Unmount(); err != nil {
		return err
	}
	s.fsys.Close()
	return nil
}

// Mount mounts st at dir. Unmount with the returned server's Unmount or
// with the function Unmount.
func Mount(dir string, st *catalog.Store, opts Options) (*Server, error) {
	f, root, err := New(st, opts)
	if err != nil {
		return nil, err
	}
	at, neg := attrTimeout, time.Duration(0)
	srv, err := fs.Mount(dir, root, &fs.Options{
		MountOptions: fuse.MountOptions{
			FsName:       "zgrid",
			Name:         "zgrid",
			MaxWrite:     1 << 20,
			MaxReadAhead: 1 << 20,
			Debug:        opts.Debug,
			AllowOther:   opts.AllowOther,
		},
		EntryTimeout:    &at,
		AttrTimeout:     &at,
		NegativeTimeout: &neg,
	})
	if err != nil {
		f.Close()
		return nil, err
	}
	return &Server{Server: srv, fsys: f}, nil
}

// loader reads one segment through the store.
func (f *FS) loader(ref storage.SegmentRef) func(context.Context) ([]byte, error) {
	return func(ctx context.Context) ([]byte, error) {
		ctx, cancel := context.WithTimeout(ctx, loadTimeout)
		defer cancel()
		return f.st.ReadSegment(ctx, ref, nil)
	}
}

func join(dir, name string) string {
	if dir == "" {
		return name
	}
	return path.Join(dir, name)
}

// fillEntry sets attributes from a catalog entry.
func fillEntry(out *fuse.Attr, e catalog.Entry) {
	mode := e.Mode & 0o7777
	if e.Dir {
		if mode == 0 {
			mode = 0o755
		}
		out.Mode = syscall.S_IFDIR | mode
		out.Nlink = 2
	} else {
		out.Mode = syscall.S_IFREG | mode
		out.Nlink = 1
	}
	out.Size = uint64(e.Size)
	out.Blocks = (out.Size + 511) / 512
	out.Blksize = 1 << 20
	if e.MTime > 0 {
		t := time.Unix(0, e.MTime)
		out.SetTimes(&t, &t, &t)
	}
}
