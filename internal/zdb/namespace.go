package zdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Namespace is one key space with its own data files, index and settings.
// All methods are safe for concurrent use: reads share a lock, writes take
// it alone (one append at a time per namespace). A write is visible to
// reads as soon as it returns; when it is durable depends on the store's
// sync policy (see SyncPolicy).
type Namespace struct {
	name string
	dir  string
	opts *Options
	log  *slog.Logger

	compactMu sync.Mutex // one compaction at a time
	snapMu    sync.Mutex // one index file write at a time; taken after mu

	mu      sync.RWMutex
	set     settings
	idx     *index
	files   map[uint32]*dataFile
	active  *dataFile
	nextLSN uint64
	nextSeq uint64
	gone    error // ErrClosed or ErrNamespaceDeleted once unusable

	unsynced atomic.Bool // appends since the last fsync of the active file
	snapDue  atomic.Bool // the index file lags behind enough to rewrite it
	corrupt  atomic.Int64
}

// ScanEntry is one key of a scan.
type ScanEntry struct {
	Key  []byte
	Size uint32
	Time time.Time
	LSN  uint64
}

// Name returns the namespace's name.
func (ns *Namespace) Name() string { return ns.name }

func (ns *Namespace) usableLocked() error { return ns.gone }

// Set stores value under key and returns the key (the new sequence id for
// an empty key in seq mode). changed is false when the key already held
// exactly this value: nothing was written, as in 0-db.
func (ns *Namespace) Set(key, value []byte) (stored []byte, changed bool, err error) {
	return ns.put(key, value, 0)
}

// put is Set with an explicit timestamp (Unix nanoseconds, 0 for now).
// A write that the disk bound of maxsize refuses, while compaction would
// free enough, compacts the namespace and tries once more.
func (ns *Namespace) put(key, value []byte, ts int64) ([]byte, bool, error) {
	stored, changed, err := ns.putOnce(key, value, ts)
	var full *diskFullError
	if !errors.As(err, &full) || !full.compactable {
		return stored, changed, err
	}
	if _, cerr := ns.Compact(); cerr != nil {
		ns.log.Error("compaction to make room failed", "namespace", ns.name, "err", cerr)
		return nil, false, err
	}
	return ns.putOnce(key, value, ts)
}

func (ns *Namespace) putOnce(key, value []byte, ts int64) ([]byte, bool, error) {
	if len(key) > MaxKeySize {
		return nil, false, ErrKeyTooLarge
	}
	if len(value) > MaxValueSize {
		return nil, false, ErrValueTooLarge
	}
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if err := ns.usableLocked(); err != nil {
		return nil, false, err
	}
	key, fresh, err := ns.chooseKeyLocked(key)
	if err != nil {
		return nil, false, err
	}
	old, had := ns.idx.get(key)
	if err := ns.checkSpaceLocked(old, had, len(value)); err != nil {
		return nil, false, err
	}
	if had && int(old.vlen) == len(value) && ns.sameValueLocked(key, old, value) {
		return key, false, nil
	}
	if err := ns.checkDiskLocked(recordSize(len(key), len(value))); err != nil {
		return nil, false, err
	}
	if ts == 0 {
		ts = ns.opts.Now().UnixNano()
	}
	rec := record{lsn: ns.nextLSN, ts: ts, key: key, value: value}
	off, df, err := ns.appendLocked(&rec)
	if err != nil {
		return nil, false, err
	}
	if fresh || ns.set.Mode == ModeSeq {
		ns.nextSeq++ // as in 0-db, an overwrite in seq mode consumes an id too
	}
	if old, had := ns.idx.put(string(key), entry{file: df.id, off: off, vlen: uint32(len(value)), lsn: rec.lsn, ts: ts}); had {
		ns.markDeadLocked(string(key), old)
	}
	return key, true, ns.afterWriteLocked()
}

func (ns *Namespace) chooseKeyLocked(key []byte) ([]byte, bool, error) {
	if ns.set.Mode == ModeSeq {
		if len(key) == 0 {
			return binary.LittleEndian.AppendUint64(nil, ns.nextSeq), true, nil
		}
		if _, ok := ns.idx.get(key); !ok {
			return nil, false, ErrSeqUpdateOnly
		}
		return key, false, nil
	}
	if len(key) == 0 {
		return nil, false, ErrKeyNeeded
	}
	return key, false, nil
}

// checkSpaceLocked enforces maxsize on the live payload: the sum of the
// current values' lengths, counting the new value instead of the old one.
func (ns *Namespace) checkSpaceLocked(old entry, had bool, n int) error {
	limit := ns.set.MaxSize
	if limit == 0 {
		return nil
	}
	used := ns.idx.liveBytes
	if had {
		used -= int64(old.vlen)
	}
	if used+int64(n) > limit {
		return fmt.Errorf("%w (namespace %s is full: maxsize %d bytes, %d used, value %d bytes)",
			ErrNamespaceFull, ns.name, limit, used, n)
	}
	return nil
}

// checkDiskLocked enforces maxsize on the bytes on disk: every data file,
// dead records included, so overwrites cannot grow the disk without bound.
// The error is a *diskFullError, compactable when compaction would free
// enough. DEL is never refused.
func (ns *Namespace) checkDiskLocked(n int64) error {
	limit := ns.set.MaxSize
	if limit == 0 {
		return nil
	}
	var disk, dead int64
	for _, df := range ns.files {
		disk += df.size
		dead += df.deadBytes
	}
	if disk+n <= limit {
		return nil
	}
	return &diskFullError{
		err: fmt.Errorf("%w (namespace %s is full: maxsize %d bytes, %d on disk, record %d bytes; compaction frees up to %d)",
			ErrNamespaceFull, ns.name, limit, disk, n, dead),
		compactable: disk+n-dead <= limit,
	}
}

// diskFullError is a write refused for the bytes on disk; compactable
// tells whether compaction would make room for it.
type diskFullError struct {
	err         error
	compactable bool
}

func (e *diskFullError) Error() string { return e.err.Error() }
func (e *diskFullError) Unwrap() error { return e.err }

func (ns *Namespace) sameValueLocked(key []byte, old entry, value []byte) bool {
	r, err := ns.readLocked(key, old)
	return err == nil && bytes.Equal(r.value, value)
}

// appendLocked writes rec to the active file, rotating first when it would
// pass the file size limit, and consumes its LSN.
func (ns *Namespace) appendLocked(rec *record) (int64, *dataFile, error) {
	size := int64(rec.size())
	if ns.active.size+size > ns.opts.MaxFileSize && ns.active.size > fileHeaderSize {
		if err := ns.rotateLocked(); err != nil {
			ns.log.Error("cannot start a new data file", "namespace", ns.name, "err", err)
			return 0, nil, fmt.Errorf("%w: %w", ErrWriteFailed, err)
		}
	}
	var parts [][]byte
	if len(rec.value) < 64<<10 {
		parts = [][]byte{appendRecord(make([]byte, 0, size), rec)} // one write
	} else { // header and key, then the value without copying it
		parts = [][]byte{appendRecordHead(make([]byte, 0, recordHeaderSize+len(rec.key)), rec), rec.value}
	}
	off, err := ns.active.append(rec.lsn, parts...)
	if err != nil {
		ns.log.Error("write failed", "namespace", ns.name, "err", err)
		return 0, nil, fmt.Errorf("%w: %w", ErrWriteFailed, err)
	}
	ns.nextLSN++
	ns.unsynced.Store(true)
	return off, ns.active, nil
}

// afterWriteLocked applies the sync policy to a write that is in the file.
func (ns *Namespace) afterWriteLocked() error {
	if ns.opts.Sync != SyncAlways {
		return nil
	}
	ns.unsynced.Store(false)
	if err := ns.active.sync(); err != nil {
		ns.unsynced.Store(true)
		ns.log.Error("fsync failed: the last write may not be durable", "namespace", ns.name, "err", err)
		return fmt.Errorf("%w: %w", ErrWriteFailed, err)
	}
	return nil
}

// markDeadLocked accounts a record that a later one superseded.
func (ns *Namespace) markDeadLocked(key string, old entry) {
	if f := ns.files[old.file]; f != nil {
		f.deadData++
		f.deadBytes += recordSize(len(key), int(old.vlen))
	}
}

// rotateLocked seals the active file and starts the next one.
func (ns *Namespace) rotateLocked() error {
	if err := ns.active.sync(); err != nil {
		return err
	}
	hdr := fileHeader{id: ns.active.id + 1, stamp: ns.opts.stamp(), startLSN: ns.nextLSN, startSeq: ns.nextSeq}
	df, err := createDataFile(ns.dir, hdr)
	if err != nil {
		return err
	}
	ns.files[df.id] = df
	ns.active = df
	ns.unsynced.Store(false)
	ns.snapDue.Store(true)
	return nil
}

// Get returns the value of key; found is false when there is none. A
// record that fails its checksum is never returned: the error is ErrCorrupt.
func (ns *Namespace) Get(key []byte) (value []byte, found bool, err error) {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	if err := ns.usableLocked(); err != nil {
		return nil, false, err
	}
	e, ok := ns.idx.get(key)
	if !ok {
		return nil, false, nil
	}
	r, err := ns.readLocked(key, e)
	if err != nil {
		return nil, true, err
	}
	return r.value, true, nil
}

// readLocked reads and verifies the record that e points at.
func (ns *Namespace) readLocked(key []byte, e entry) (record, error) {
	df := ns.files[e.file]
	if df == nil {
		return record{}, fmt.Errorf("%w: index points at missing data file %d", ErrInternal, e.file)
	}
	r, err := df.readRecord(e.off, len(key), int(e.vlen))
	if err == nil && (r.lsn != e.lsn || r.tombstone() || !bytes.Equal(r.key, key)) {
		err = fmt.Errorf("%w: record at offset %d is not the indexed one", errHeader, e.off)
	}
	if err != nil && isFormatError(err) {
		ns.corrupt.Add(1)
		ns.log.Error("damaged record not served", "namespace", ns.name, "file", df.path, "offset", e.off, "err", err)
		return record{}, ErrCorrupt
	}
	return r, err
}

// Check reports whether the record of key passes its checksum (0-db's
// CHECK). found is false when the key does not exist.
func (ns *Namespace) Check(key []byte) (ok, found bool, err error) {
	_, found, err = ns.Get(key)
	if errors.Is(err, ErrCorrupt) {
		return false, true, nil
	}
	return err == nil && found, found, err
}

// Exists reports whether key has a value.
func (ns *Namespace) Exists(key []byte) (bool, error) {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	if err := ns.usableLocked(); err != nil {
		return false, err
	}
	_, ok := ns.idx.get(key)
	return ok, nil
}

// Delete removes key by appending a tombstone. ErrKeyNotFound when there
// is nothing to remove.
func (ns *Namespace) Delete(key []byte) error {
	if len(key) == 0 || len(key) > MaxKeySize {
		return ErrKeyNotFound
	}
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if err := ns.usableLocked(); err != nil {
		return err
	}
	old, had := ns.idx.get(key)
	if !had {
		return ErrKeyNotFound
	}
	rec := record{flags: flagTombstone, lsn: ns.nextLSN, ts: ns.opts.Now().UnixNano(), key: key}
	_, df, err := ns.appendLocked(&rec)
	if err != nil {
		return err
	}
	ns.idx.remove(string(key))
	ns.markDeadLocked(string(key), old)
	df.tombstones++
	df.deadBytes += int64(rec.size())
	return ns.afterWriteLocked()
}

// Scan returns up to max keys whose current record comes after LSN after
// (0 for the beginning), oldest first. A key written again during a scan
// comes again at its new place; no key that exists for the whole scan is
// missed, compaction and restarts included.
func (ns *Namespace) Scan(after uint64, max int) ([]ScanEntry, error) {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	if err := ns.usableLocked(); err != nil {
		return nil, err
	}
	items := ns.idx.after(after, max)
	out := make([]ScanEntry, len(items))
	for i, it := range items {
		out[i] = ScanEntry{Key: []byte(it.key), Size: it.e.vlen, Time: time.Unix(0, it.e.ts), LSN: it.e.lsn}
	}
	return out, nil
}

// RScan is Scan backwards: up to max keys whose current record comes
// before LSN before (0 for the end), newest first.
func (ns *Namespace) RScan(before uint64, max int) ([]ScanEntry, error) {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	if err := ns.usableLocked(); err != nil {
		return nil, err
	}
	items := ns.idx.before(before, max)
	out := make([]ScanEntry, len(items))
	for i, it := range items {
		out[i] = ScanEntry{Key: []byte(it.key), Size: it.e.vlen, Time: time.Unix(0, it.e.ts), LSN: it.e.lsn}
	}
	return out, nil
}

// KeysWithPrefix returns the keys that start with prefix, sorted, or
// ErrTooManyMatches when more than max do.
func (ns *Namespace) KeysWithPrefix(prefix []byte, max int) ([][]byte, error) {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	if err := ns.usableLocked(); err != nil {
		return nil, err
	}
	var out [][]byte
	for k := range ns.idx.keys {
		if strings.HasPrefix(k, string(prefix)) {
			if len(out) == max {
				return nil, fmt.Errorf("%w (more than %d): use a longer prefix, or SCAN", ErrTooManyMatches, max)
			}
			out = append(out, []byte(k))
		}
	}
	slices.SortFunc(out, bytes.Compare)
	return out, nil
}

// Stat describes key's current record without reading it; its LSN is a
// scan position right after key.
func (ns *Namespace) Stat(key []byte) (ScanEntry, bool, error) {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	if err := ns.usableLocked(); err != nil {
		return ScanEntry{}, false, err
	}
	e, ok := ns.idx.get(key)
	if !ok {
		return ScanEntry{}, false, nil
	}
	return ScanEntry{Key: key, Size: e.vlen, Time: time.Unix(0, e.ts), LSN: e.lsn}, true, nil
}

// NamespaceInfo describes a namespace (NSINFO).
type NamespaceInfo struct {
	Name          string
	Entries       int
	Public        bool
	HasPassword   bool
	Mode          Mode
	DataSize      int64 // live payload bytes, what maxsize limits
	MaxSize       int64 // 0: unlimited
	DiskSize      int64 // bytes of all data files
	Reclaimable   int64 // bytes compaction would free
	DataFiles     int
	NextSeq       uint64
	CorruptReads  int64
	ActiveFile    string
	ActiveFileLen int64
}

// Info returns the namespace's counters and settings.
func (ns *Namespace) Info() (NamespaceInfo, error) {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	if err := ns.usableLocked(); err != nil {
		return NamespaceInfo{}, err
	}
	in := NamespaceInfo{
		Name: ns.name, Entries: ns.idx.len(), Public: ns.set.Public, HasPassword: ns.set.Password != "",
		Mode: ns.set.Mode, DataSize: ns.idx.liveBytes, MaxSize: ns.set.MaxSize, DataFiles: len(ns.files),
		NextSeq: ns.nextSeq, CorruptReads: ns.corrupt.Load(), ActiveFile: ns.active.path, ActiveFileLen: ns.active.size,
	}
	for _, df := range ns.files {
		in.DiskSize += df.size
		in.Reclaimable += df.deadBytes
	}
	return in, nil
}

// flush fsyncs the active file if writes are pending (batch policy). It
// does not hold the lock during the fsync, so writers go on meanwhile.
func (ns *Namespace) flush() error {
	if !ns.unsynced.Swap(false) {
		return nil
	}
	ns.mu.RLock()
	df, gone := ns.active, ns.gone
	ns.mu.RUnlock()
	if gone != nil {
		return nil
	}
	if err := df.sync(); err != nil && !errors.Is(err, os.ErrClosed) {
		ns.unsynced.Store(true)
		return err
	}
	return nil
}

// Sync makes every write acknowledged so far durable, whatever the sync
// policy (sealed files were fsynced when they were sealed).
func (ns *Namespace) Sync() error {
	ns.mu.RLock()
	df, gone := ns.active, ns.gone
	ns.mu.RUnlock()
	if gone != nil {
		return gone
	}
	if err := df.sync(); err != nil && !errors.Is(err, os.ErrClosed) {
		ns.log.Error("fsync failed", "namespace", ns.name, "err", err)
		return fmt.Errorf("%w: %w", ErrWriteFailed, err)
	}
	return nil
}

// access returns what SELECT needs to decide.
func (ns *Namespace) access() (password string, public bool, err error) {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	return ns.set.Password, ns.set.Public, ns.gone
}

// Configure changes one property, as NSSET does: password (“*” clears it),
// public (0 or 1), maxsize (bytes, 0 for none) or mode (user or seq, only
// while the namespace has never held a record). The default namespace,
// open to every client, accepts only mode (as in 0-db) and maxsize (so an
// operator can keep it from filling the disk).
func (ns *Namespace) Configure(prop, value string) error {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if err := ns.usableLocked(); err != nil {
		return err
	}
	next := ns.set
	if err := ns.applyPropertyLocked(&next, prop, value); err != nil {
		return err
	}
	if err := writeSettings(ns.dir, next); err != nil {
		ns.log.Error("cannot save namespace settings", "namespace", ns.name, "err", err)
		return fmt.Errorf("%w: %w", ErrWriteFailed, err)
	}
	ns.set = next
	return nil
}

func (ns *Namespace) applyPropertyLocked(s *settings, prop, value string) error {
	if prop != "mode" && prop != "maxsize" && ns.name == DefaultNamespace {
		return ErrUpdateDefault
	}
	switch prop {
	case "password":
		if len(value) > maxPasswordLen {
			return fmt.Errorf("%w: password longer than %d bytes", ErrBadPropertyValue, maxPasswordLen)
		}
		s.Password = value
		if value == "*" {
			s.Password = ""
		}
	case "public":
		if value != "0" && value != "1" {
			return fmt.Errorf("%w (expected: 0 or 1)", ErrBadPropertyValue)
		}
		s.Public = value == "1"
	case "maxsize":
		n, err := strconv.ParseUint(value, 10, 63)
		if err != nil {
			return fmt.Errorf("%w (expected: a size in bytes, 0 for none)", ErrBadPropertyValue)
		}
		s.MaxSize = int64(n)
	case "mode":
		return ns.applyModeLocked(s, value)
	default:
		return fmt.Errorf("%w (expected: password, public, maxsize or mode)", ErrBadProperty)
	}
	return nil
}

func (ns *Namespace) applyModeLocked(s *settings, value string) error {
	m := Mode(value)
	if m != ModeUser && m != ModeSeq {
		return fmt.Errorf("%w (expected: user, seq)", ErrBadPropertyValue)
	}
	if m != s.Mode && ns.nextLSN > 1 {
		return ErrModeChange
	}
	s.Mode = m
	return nil
}
