package fusefs

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path"
	"sync"
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
	// RefreshEvery is how often the mount looks for roots committed by
	// other writers (a `zgrid store put` elsewhere); 0 means 2 s, negative
	// never.
	RefreshEvery time.Duration
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
	cache    *segCache[storage.SegmentID]
	frames   *segCache[frameKey] // decrypted 64 KiB frames (frames.go)
	readers  segReaderCache

	mu      sync.Mutex
	writing map[*fileNode]struct{} // nodes with a spool (open for writing)
	// root is the root directory's attributes: it has no catalog entry,
	// so they live in memory and start at the mount's time.
	root    catalog.Entry
	started time.Time // the time of implicit directories

	stopRefresh func() // ends refreshLoop and waits for it
}

// spooled records that n has (or no longer has) a spool. Called with n.mu
// held; f.mu nests inside it.
func (f *FS) spooled(n *fileNode, open bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if open {
		f.writing[n] = struct{}{}
	} else {
		delete(f.writing, n)
	}
}

// FlushAll uploads every file open for writing as it stands, as a close
// would: what write(2) acknowledged is in the store when it returns nil.
// The files stay open. It returns the first upload error.
func (f *FS) FlushAll(ctx context.Context) error {
	f.mu.Lock()
	nodes := make([]*fileNode, 0, len(f.writing))
	for n := range f.writing {
		nodes = append(nodes, n)
	}
	f.mu.Unlock()
	var first error
	for _, n := range nodes {
		n.mu.Lock()
		err := n.uploadLocked(ctx)
		n.mu.Unlock()
		if err != nil {
			f.log.Error("upload of an open file failed", "file", n.path(), "err", err)
			first = cmp.Or(first, err)
		}
	}
	return first
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
	f := &FS{st: st, cacheDir: opts.CacheDir, log: opts.Logger, cache: newSegCache[storage.SegmentID](n), frames: newSegCache[frameKey](frameCacheFrames), writing: map[*fileNode]struct{}{}}
	every := opts.RefreshEvery
	if every == 0 {
		every = 2 * time.Second
	}
	f.stopRefresh = func() {}
	if every > 0 {
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { defer close(done); f.refreshLoop(ctx, every) }()
		var once sync.Once
		f.stopRefresh = func() { once.Do(func() { cancel(); <-done }) }
	}
	f.started = time.Now()
	f.root = catalog.Entry{Dir: true, Mode: 0o755, MTime: f.started.UnixNano(), CTime: f.started.UnixNano()}
	if f.log == nil {
		f.log = slog.New(slog.DiscardHandler)
	}
	return f, &dirNode{fsys: f}, nil
}

// Close stops the refresh loop, cancels the segment loads in flight and
// waits for the read-ahead goroutines to end. Reads after Close fail.
func (f *FS) Close() {
	f.stopRefresh()
	f.cache.close()
	f.frames.close()
}

// refreshLoop picks up other writers' commits every interval until ctx
// ends.
func (f *FS) refreshLoop(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if changed, err := f.st.Refresh(ctx); err != nil && ctx.Err() == nil {
			f.log.Warn("look for other writers' changes", "err", err)
		} else if changed {
			f.log.Debug("catalog changed by another writer", "seq", f.st.Seq())
		}
	}
}

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
			Options:      permissionOptions(opts),
			AllowOther:   opts.AllowOther,
		},
		NullPermissions: true, // mode 0 is mode 0
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

// fillEntry sets attributes from a catalog entry; times the entry lacks
// (the root, implicit directories) are def.
func fillEntry(out *fuse.Attr, e catalog.Entry, def time.Time) {
	mode := e.Mode & 0o7777
	switch {
	case e.Dir:
		out.Mode = syscall.S_IFDIR | mode
		out.Nlink = 2
	case e.IsLink():
		out.Mode = syscall.S_IFLNK | 0o777
		out.Nlink = 1
		e.Size = int64(len(e.Link))
	default:
		out.Mode = syscall.S_IFREG | mode
		out.Nlink = 1
	}
	out.Size = uint64(e.Size)
	out.Blocks = (out.Size + 511) / 512
	out.Blksize = 1 << 20
	out.Uid, out.Gid = e.UID, e.GID
	mt := def
	if e.MTime != 0 {
		mt = time.Unix(0, e.MTime)
	}
	at, ct := mt, mt
	if e.ATime != 0 {
		at = time.Unix(0, e.ATime)
	}
	if e.CTime != 0 {
		ct = time.Unix(0, e.CTime)
	}
	out.SetTimes(&at, &mt, &ct)
}

// caller returns the uid and gid of the process making a request.
func caller(ctx context.Context) (uid, gid uint32) {
	if c, ok := fuse.FromContext(ctx); ok {
		return c.Uid, c.Gid
	}
	return 0, 0
}

// rootEntry returns the root's attributes.
func (f *FS) rootEntry() catalog.Entry {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.root
}

// touchRoot sets the root's mtime and ctime after a change of its entries.
func (f *FS) touchRoot() {
	f.mu.Lock()
	defer f.mu.Unlock()
	now := time.Now().UnixNano()
	f.root.MTime, f.root.CTime = now, now
}

// changed notes a change of the entries of directory dir: the root's
// times live here, the others' in the catalog.
func (f *FS) changed(dir string) {
	if dir == "" {
		f.touchRoot()
	}
}

// fill sets attributes from e, with the mount's start for missing times.
func (f *FS) fill(out *fuse.Attr, e catalog.Entry) { fillEntry(out, e, f.started) }

// setRoot applies a change of attributes to the root.
func (f *FS) setRoot(a catalog.Attr) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.root.Apply(a, time.Now())
}

// permissionOptions: a mount for its own user has the kernel check
// permissions against the stored mode and owner, as on a local file system.
// A mount shared with another user namespace (AllowOther: a qsfs
// bind-mounted into a container, whose root is an unprivileged host uid)
// does not: the stored owners are host uids the container's users are not,
// and the container is the only user that reaches the mount (its host
// mount point is inside the node's private data directory).
func permissionOptions(opts Options) []string {
	if opts.AllowOther {
		return nil
	}
	return []string{"default_permissions"}
}
