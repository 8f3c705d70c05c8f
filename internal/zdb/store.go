package zdb

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"
)

// SyncPolicy says when a write reaches stable storage.
type SyncPolicy string

const (
	// SyncAlways fsyncs the data file before a write is acknowledged: an
	// acknowledged write survives a power loss (on storage that honours
	// flushes).
	SyncAlways SyncPolicy = "always"
	// SyncBatch acknowledges a write once the kernel has it and fsyncs
	// every SyncInterval: a crash of the process loses nothing
	// acknowledged; a power loss or kernel crash can lose the writes of the
	// last interval.
	SyncBatch SyncPolicy = "batch"
)

// Options configure a Store. Zero values take the defaults.
type Options struct {
	Dir             string        // required: one subdirectory per namespace
	Logger          *slog.Logger  // default: discard
	Sync            SyncPolicy    // default SyncBatch
	SyncInterval    time.Duration // default 50ms
	MaxFileSize     int64         // rotate before a write would pass this, default 64 MiB
	CompactInterval time.Duration // background compaction period, 0: off
	CompactRatio    float64       // background: dead share that makes a file worth rewriting, default 0.5
	Now             func() time.Time
	Rand            io.Reader // file stamps, read concurrently; default crypto/rand
	// Mode is the mode of new namespaces and of the default namespace
	// (0-db's --mode); default ModeUser. An existing namespace keeps its
	// own; Open fails if the default namespace already holds records in
	// the other mode.
	Mode Mode

	// failpoints, for tests: called at named steps; an error aborts there
	// as a crash would.
	failpoints func(name string) error
}

const (
	defaultSyncInterval = 50 * time.Millisecond
	defaultMaxFileSize  = 64 << 20
)

func (o *Options) withDefaults() (*Options, error) {
	c := *o
	if c.Dir == "" {
		return nil, fmt.Errorf("%w: no data directory", ErrBadOptions)
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	switch c.Mode {
	case "":
		c.Mode = ModeUser
	case ModeUser, ModeSeq:
	default:
		return nil, fmt.Errorf("%w: mode %q (want user or seq)", ErrBadOptions, c.Mode)
	}
	switch c.Sync {
	case "":
		c.Sync = SyncBatch
	case SyncAlways, SyncBatch:
	default:
		return nil, fmt.Errorf("%w: sync policy %q: want %q or %q", ErrBadOptions, c.Sync, SyncAlways, SyncBatch)
	}
	if c.SyncInterval <= 0 {
		c.SyncInterval = defaultSyncInterval
	}
	if c.MaxFileSize <= 0 {
		c.MaxFileSize = defaultMaxFileSize
	}
	switch {
	case c.CompactRatio == 0:
		c.CompactRatio = 0.5
	case c.CompactRatio < 0 || c.CompactRatio > 1:
		return nil, fmt.Errorf("%w: compaction ratio %v: want a share above 0, at most 1", ErrBadOptions, c.CompactRatio)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
	if c.Rand == nil {
		c.Rand = rand.Reader
	}
	return &c, nil
}

func (o *Options) stamp() uint64 {
	var b [8]byte
	if _, err := io.ReadFull(o.Rand, b[:]); err != nil {
		return uint64(o.Now().UnixNano()) // still differs from the file it replaces
	}
	return binary.LittleEndian.Uint64(b[:])
}

func (o *Options) failpoint(name string) error {
	if o.failpoints == nil {
		return nil
	}
	return o.failpoints(name)
}

// Store is a directory of namespaces. It holds an exclusive lock on the
// directory while open. Safe for concurrent use.
type Store struct {
	opts   *Options
	log    *slog.Logger
	unlock func() error

	mu     sync.Mutex
	spaces map[string]*Namespace
	closed bool

	stop chan struct{}
	wg   sync.WaitGroup
}

// Open opens (creating if needed) the store in opts.Dir, loads every
// namespace and starts the background sync (and compaction, if set).
func Open(opts Options) (*Store, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.Dir, 0o700); err != nil {
		return nil, err
	}
	unlock, err := lockDir(o.Dir)
	if err != nil {
		return nil, err
	}
	s := &Store{opts: o, log: o.Logger, unlock: unlock, spaces: make(map[string]*Namespace), stop: make(chan struct{})}
	if err := s.loadAll(); err != nil {
		s.closeSpaces()
		unlock()
		return nil, err
	}
	s.wg.Add(1)
	go s.background()
	return s, nil
}

func (s *Store) loadAll() error {
	if err := os.RemoveAll(filepath.Join(s.opts.Dir, trashDir)); err != nil {
		return err
	}
	des, err := os.ReadDir(s.opts.Dir)
	if err != nil {
		return err
	}
	for _, de := range des {
		if !de.IsDir() || !validName(de.Name()) {
			continue
		}
		ns, err := openNamespace(filepath.Join(s.opts.Dir, de.Name()), s.opts, s.log)
		if errors.Is(err, fs.ErrNotExist) && strings.Contains(err.Error(), settingsFileName) {
			s.log.Warn("directory without namespace.json ignored", "dir", de.Name())
			continue
		}
		if err != nil {
			return err
		}
		s.spaces[ns.name] = ns
	}
	if _, ok := s.spaces[DefaultNamespace]; !ok {
		ns, err := createNamespace(s.opts.Dir, DefaultNamespace, s.opts, s.log)
		if err != nil {
			return fmt.Errorf("create default namespace: %w", err)
		}
		s.spaces[DefaultNamespace] = ns
	}
	if err := s.spaces[DefaultNamespace].Configure("mode", string(s.opts.Mode)); err != nil {
		return fmt.Errorf("%w: the default namespace already holds records, not in %s mode: start without that mode, or in a new directory", ErrBadOptions, s.opts.Mode)
	}
	return nil
}

// trashDir holds namespaces being deleted; a loader empties it.
const trashDir = ".trash"

// Namespace returns the namespace called name.
func (s *Store) Namespace(name string) (*Namespace, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	ns, ok := s.spaces[name]
	if !ok {
		return nil, ErrNamespaceNotFound
	}
	return ns, nil
}

// Names lists the namespaces, sorted.
func (s *Store) Names() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	names := make([]string, 0, len(s.spaces))
	for n := range s.spaces {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// Create makes a new namespace with default settings: no password (so
// open to every client until one is set), private (once a password is
// set, SELECT needs it), no size limit, Options.Mode (user by default).
func (s *Store) Create(name string) (*Namespace, error) {
	if !validName(name) {
		return nil, ErrBadNamespaceName
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, ErrClosed
	}
	if _, ok := s.spaces[name]; ok {
		return nil, ErrNamespaceExists
	}
	ns, err := createNamespace(s.opts.Dir, name, s.opts, s.log)
	if err == nil && s.opts.Mode != ModeUser {
		err = ns.Configure("mode", string(s.opts.Mode))
	}
	if err != nil {
		s.log.Error("cannot create namespace", "namespace", name, "err", err)
		return nil, fmt.Errorf("%w: %w", ErrWriteFailed, err)
	}
	s.spaces[name] = ns
	return ns, nil
}

// Delete removes a namespace and its files. Clients still using it get
// ErrNamespaceDeleted. The directory is first renamed into DIR/.trash, so
// a crash in the middle never leaves half a namespace.
func (s *Store) Delete(name string) error {
	if name == DefaultNamespace {
		return ErrDeleteDefault
	}
	ns, err := s.Namespace(name)
	if err != nil {
		return err
	}
	ns.compactMu.Lock() // let a running compaction finish first
	defer ns.compactMu.Unlock()
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.spaces[name] != ns {
		return ErrNamespaceNotFound
	}
	delete(s.spaces, name)
	closeErr := ns.drop()
	trash := filepath.Join(s.opts.Dir, trashDir)
	err = os.MkdirAll(trash, 0o700)
	if err == nil {
		err = os.Rename(ns.dir, filepath.Join(trash, fmt.Sprintf("%s.%x", name, s.opts.stamp())))
	}
	if err == nil {
		err = syncDir(s.opts.Dir)
	}
	if err != nil {
		return fmt.Errorf("%w: delete namespace %s: %w", ErrWriteFailed, name, errors.Join(closeErr, err))
	}
	return os.RemoveAll(trash)
}

// Close stops the background work, syncs every namespace, saves the
// indexes, closes the files and releases the directory.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	close(s.stop)
	s.wg.Wait()
	err := s.closeSpaces()
	return errors.Join(err, s.unlock())
}

func (s *Store) closeSpaces() error {
	var errs []error
	for _, ns := range s.spaces {
		errs = append(errs, ns.close())
	}
	return errors.Join(errs...)
}

func (s *Store) snapshotSpaces() []*Namespace {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Namespace, 0, len(s.spaces))
	for _, ns := range s.spaces {
		out = append(out, ns)
	}
	return out
}

// background fsyncs (batch policy), rewrites due index files and, when
// configured, compacts files with many dead records.
func (s *Store) background() {
	defer s.wg.Done()
	tick := time.NewTicker(s.opts.SyncInterval)
	defer tick.Stop()
	var compactC <-chan time.Time
	if s.opts.CompactInterval > 0 {
		ct := time.NewTicker(s.opts.CompactInterval)
		defer ct.Stop()
		compactC = ct.C
	}
	for {
		select {
		case <-s.stop:
			return
		case <-tick.C:
			s.maintain()
		case <-compactC:
			for _, ns := range s.snapshotSpaces() {
				if _, err := ns.compact(s.opts.CompactRatio); err != nil && !isGone(err) {
					s.log.Error("background compaction failed", "namespace", ns.name, "err", err)
				}
			}
		}
	}
}

func (s *Store) maintain() {
	for _, ns := range s.snapshotSpaces() {
		if err := ns.flush(); err != nil {
			s.log.Error("fsync failed", "namespace", ns.name, "err", err)
		}
		if err := ns.snapshotIfDue(); err != nil {
			s.log.Error("cannot write index file", "namespace", ns.name, "err", err)
		}
	}
}

func isGone(err error) bool {
	return errors.Is(err, ErrClosed) || errors.Is(err, ErrNamespaceDeleted)
}
