package zdb

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
)

// openNamespace loads the namespace in dir: settings, data files (a torn
// tail of the newest one is cut off and reported; damaged records elsewhere
// are reported and skipped) and the index, from the index file when it
// matches the data files, otherwise rebuilt from the data files.
func openNamespace(dir string, opts *Options, log *slog.Logger) (*Namespace, error) {
	set, wasPublic, err := readSettings(dir)
	if err != nil {
		return nil, fmt.Errorf("open namespace %s: %w", dir, err)
	}
	if wasPublic {
		log.Warn("namespace is private now: its old settings file made every namespace public, so reads need the password; if it should stay readable without one, run NSSET <name> public 1",
			"namespace", set.Name)
	}
	if err := removeTmpFiles(dir); err != nil {
		return nil, fmt.Errorf("open namespace %s: remove leftovers: %w", dir, err)
	}
	ns := &Namespace{
		name: set.Name, dir: dir, opts: opts, log: log, set: set,
		idx: newIndex(), files: make(map[uint32]*dataFile), nextLSN: 1,
	}
	if err := ns.load(); err != nil {
		ns.closeFilesLocked()
		return nil, fmt.Errorf("open namespace %s: %w", set.Name, err)
	}
	return ns, nil
}

// createNamespace makes root/name with default settings and an empty data
// file. It prepares the directory under root/.trash and renames it into
// place, so a crash never leaves a namespace without its settings.
func createNamespace(root, name string, opts *Options, log *slog.Logger) (*Namespace, error) {
	dir := filepath.Join(root, name)
	tmp := filepath.Join(root, trashDir, fmt.Sprintf("%s.new.%x", name, opts.stamp()))
	if err := os.MkdirAll(tmp, 0o700); err != nil {
		return nil, err
	}
	err := writeSettings(tmp, defaultSettings(name))
	if err == nil {
		err = os.Rename(tmp, dir)
	}
	if err == nil {
		err = syncDir(root)
	}
	if err != nil {
		_ = os.RemoveAll(tmp)
		return nil, err
	}
	ns, err := openNamespace(dir, opts, log)
	if err != nil {
		return nil, err
	}
	if err := ns.writeSnapshotLocked(); err != nil { // not shared yet
		ns.closeFilesLocked()
		return nil, err
	}
	return ns, nil
}

func (ns *Namespace) load() error {
	ids, err := listDataFiles(ns.dir)
	if err != nil {
		return err
	}
	good, err := ns.openFiles(ids)
	if err != nil {
		return err
	}
	snap, from := ns.startIndex(good)
	activeOK := len(good) > 0 && good[len(good)-1] == ids[len(ids)-1]
	changed := snap == nil
	for i, id := range good {
		start, ok := from[id]
		if !ok {
			start = fileHeaderSize
		}
		n, err := ns.replay(ns.files[id], start, activeOK && i == len(good)-1)
		if err != nil {
			return err
		}
		changed = changed || n > 0
	}
	ns.snapDue.Store(changed)
	var top uint32
	if len(ids) > 0 {
		top = ids[len(ids)-1]
	}
	return ns.ensureActive(good, activeOK, top)
}

// startIndex loads the index file if it matches the data files and returns
// it with where each file's replay starts; otherwise nil and an empty map,
// and every file is replayed from its first record.
func (ns *Namespace) startIndex(good []uint32) (*snapshot, map[uint32]int64) {
	snap, why := ns.readSnapshot(good)
	from := make(map[uint32]int64)
	switch {
	case snap != nil:
		ns.useSnapshot(snap)
		for _, sf := range snap.files {
			from[sf.id] = sf.covered
		}
	case len(good) == 0: // a new namespace: nothing to index
	case why == noIndexFile:
		ns.log.Info("building index from data files", "namespace", ns.name, "reason", why)
	default:
		ns.log.Warn("rebuilding index from data files", "namespace", ns.name, "reason", why)
	}
	return snap, from
}

func listDataFiles(dir string) ([]uint32, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var ids []uint32
	for _, de := range des {
		if id, ok := parseDataFileName(de.Name()); ok && de.Type().IsRegular() {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

// openFiles opens the data files, the newest for appending. A file whose
// header does not decode is renamed *.bad and left out (reported): nothing
// in it can be trusted to belong here.
func (ns *Namespace) openFiles(ids []uint32) ([]uint32, error) {
	var good []uint32
	for i, id := range ids {
		df, err := openDataFile(ns.dir, id, i == len(ids)-1)
		if err != nil && isFormatError(err) {
			path := filepath.Join(ns.dir, dataFileName(id))
			ns.log.Error("data file has a damaged header: set aside, its records are lost",
				"namespace", ns.name, "file", path, "moved_to", path+".bad", "err", err)
			if rerr := os.Rename(path, path+".bad"); rerr != nil {
				return nil, rerr
			}
			continue
		}
		if err != nil {
			return nil, err
		}
		ns.files[id] = df
		good = append(good, id)
	}
	return good, nil
}

// replay indexes the records of df from offset from on and returns how
// many it found and how many bytes it skipped or cut.
func (ns *Namespace) replay(df *dataFile, from int64, active bool) (int, error) {
	n := 0
	res, err := df.scan(from, df.lastLSN, func(off int64, r *record) {
		ns.applyLocked(df, off, r)
		n++
	})
	if err != nil {
		return 0, fmt.Errorf("read %s: %w", df.path, err)
	}
	for _, b := range res.bad {
		ns.log.Error("damaged record skipped: not indexed, never served", "namespace", ns.name,
			"file", df.path, "offset", b.off, "bytes", b.length, "err", b.err)
		df.deadBytes += b.length
		n++
	}
	df.size = res.end
	switch {
	case res.tail > 0 && active:
		ns.log.Warn("torn tail truncated (an interrupted write)", "namespace", ns.name,
			"file", df.path, "offset", res.end, "bytes_dropped", res.tail)
		return n + 1, df.truncate(res.end)
	case res.tail > 0:
		ns.log.Error("damaged end of a sealed data file skipped", "namespace", ns.name,
			"file", df.path, "offset", res.end, "bytes", res.tail)
		df.deadBytes += res.tail
		df.size = res.end + res.tail
		n++
	}
	return n, nil
}

// applyLocked indexes one record found in a data file, in file order.
func (ns *Namespace) applyLocked(df *dataFile, off int64, r *record) {
	df.records++
	df.lastLSN = r.lsn
	ns.nextLSN = max(ns.nextLSN, r.lsn+1)
	k := string(r.key)
	if ns.set.Mode == ModeSeq && len(r.key) == 8 {
		if _, had := ns.idx.keys[k]; had && !r.tombstone() {
			ns.nextSeq++ // an overwrite consumed an id (Set)
		}
		if s := binary.LittleEndian.Uint64(r.key); s < ^uint64(0) {
			ns.nextSeq = max(ns.nextSeq, s+1)
		}
	}
	if r.tombstone() {
		if old, had := ns.idx.remove(k); had {
			ns.markDeadLocked(k, old)
		}
		df.tombstones++
		df.deadBytes += int64(r.size())
		return
	}
	e := entry{file: df.id, off: off, vlen: uint32(len(r.value)), lsn: r.lsn, ts: r.ts}
	if old, had := ns.idx.put(k, e); had {
		ns.markDeadLocked(k, old)
	}
}

// ensureActive makes the newest file the active one, or starts a new file
// (id above top, the highest id seen) when there is none: a new namespace,
// or the newest file was set aside. The LSN and sequence floors of the file
// headers keep both counters from ever going back, even when compaction
// removed the records that held the highest values.
func (ns *Namespace) ensureActive(good []uint32, activeOK bool, top uint32) error {
	for _, df := range ns.files {
		ns.nextLSN = max(ns.nextLSN, df.hdr.startLSN)
		ns.nextSeq = max(ns.nextSeq, df.hdr.startSeq)
	}
	if activeOK {
		ns.active = ns.files[good[len(good)-1]]
		return nil
	}
	hdr := fileHeader{id: top + 1, stamp: ns.opts.stamp(), startLSN: ns.nextLSN, startSeq: ns.nextSeq}
	df, err := createDataFile(ns.dir, hdr)
	if err != nil {
		return err
	}
	ns.files[df.id] = df
	ns.active = df
	return nil
}

const noIndexFile = "no index file"

// readSnapshot returns the index file if it matches the data files, or nil
// and the reason it was not used.
func (ns *Namespace) readSnapshot(ids []uint32) (*snapshot, string) {
	b, err := os.ReadFile(filepath.Join(ns.dir, indexFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, noIndexFile
	}
	if err != nil {
		return nil, err.Error()
	}
	s, err := decodeSnapshot(b)
	if err != nil {
		return nil, "index file: " + err.Error()
	}
	if err := ns.matchSnapshot(s, ids); err != nil {
		return nil, err.Error()
	}
	return s, ""
}

// matchSnapshot checks that s describes these data files: the same files
// (id and stamp) up to its newest, none shorter than it read, and every
// entry inside what it read.
func (ns *Namespace) matchSnapshot(s *snapshot, ids []uint32) error {
	known := make(map[uint32]snapFile, len(s.files))
	var top uint32
	for _, sf := range s.files {
		df := ns.files[sf.id]
		if df == nil || df.hdr.stamp != sf.stamp || df.size < sf.covered || sf.covered < fileHeaderSize {
			return fmt.Errorf("%w: data file %d changed or is missing", errSnapshotOld, sf.id)
		}
		known[sf.id] = sf
		top = max(top, sf.id)
	}
	for _, id := range ids {
		if _, ok := known[id]; !ok && id < top {
			return fmt.Errorf("%w: data file %d is not in it", errSnapshotOld, id)
		}
	}
	for k, e := range s.keys {
		sf, ok := known[e.file]
		if !ok || e.off+recordSize(len(k), int(e.vlen)) > sf.covered {
			return fmt.Errorf("%w: an entry points outside the data files", errSnapshotOld)
		}
	}
	return nil
}

func (ns *Namespace) useSnapshot(s *snapshot) {
	for _, sf := range s.files {
		df := ns.files[sf.id]
		df.size, df.lastLSN, df.records = sf.covered, sf.lastLSN, sf.records
		df.deadData, df.tombstones, df.deadBytes = sf.deadData, sf.tombstones, sf.deadBytes
	}
	ns.idx.keys = s.keys
	ns.idx.rebuildOrder()
	ns.nextLSN = max(s.nextLSN, 1)
	ns.nextSeq = s.nextSeq
}

// writeSnapshotLocked saves the index. The data files are fsynced first,
// so the index file never points past what is on disk. The caller holds
// the lock, shared or exclusive.
func (ns *Namespace) writeSnapshotLocked() error {
	ns.snapMu.Lock()
	defer ns.snapMu.Unlock()
	if err := ns.active.sync(); err != nil {
		return err
	}
	s := &snapshot{nextLSN: ns.nextLSN, nextSeq: ns.nextSeq, keys: ns.idx.keys}
	for _, df := range ns.files {
		s.files = append(s.files, snapFileOf(df))
	}
	err := writeFileAtomic(ns.dir, indexFileName, func(w *bufio.Writer) error { return writeSnapshot(w, s) })
	if err == nil {
		ns.snapDue.Store(false)
	}
	return err
}

// snapshotIfDue rewrites the index file when rotation, compaction or a
// rebuild asked for it.
func (ns *Namespace) snapshotIfDue() error {
	if !ns.snapDue.Load() {
		return nil
	}
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	if ns.gone != nil {
		return nil
	}
	return ns.writeSnapshotLocked()
}

// close syncs, saves the index and closes the files. Later calls on the
// namespace fail with ErrClosed.
func (ns *Namespace) close() error {
	ns.compactMu.Lock() // let a running compaction finish first
	defer ns.compactMu.Unlock()
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if ns.gone != nil {
		return nil
	}
	err := ns.writeSnapshotLocked()
	ns.gone = ErrClosed
	return errors.Join(err, ns.closeFilesLocked())
}

// drop marks the namespace deleted and closes its files without saving;
// the store then removes its directory.
func (ns *Namespace) drop() error {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	ns.gone = ErrNamespaceDeleted
	return ns.closeFilesLocked()
}

func (ns *Namespace) closeFilesLocked() error {
	var errs []error
	for id, df := range ns.files {
		errs = append(errs, df.f.Close())
		delete(ns.files, id)
	}
	return errors.Join(errs...)
}
