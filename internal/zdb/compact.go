package zdb

import (
	"bufio"
	"fmt"
	"os"
	"slices"

	"github.com/zerogrid/zerogrid/internal/atomicfile"
)

// CompactStats reports what a compaction did.
type CompactStats struct {
	Files     int   // data files rewritten or removed
	Reclaimed int64 // bytes freed on disk
}

// Compact rewrites every data file that holds dead records (overwritten or
// deleted values, tombstones no longer needed, damaged ranges) without
// them. The active file is sealed first if it has dead records, so that
// everything is covered. Safe against crashes at any point: see
// compactFile.
func (ns *Namespace) Compact() (CompactStats, error) { return ns.compact(0) }

// compact rewrites the sealed files whose dead bytes are at least ratio of
// their records (ratio 0: every file with dead bytes, after sealing the
// active file).
//
// A tombstone may be dropped only when no older record of its key is left
// anywhere. Files keep their ids, and ids follow append order, so it is
// enough that every older file holds no dead value record: the pass goes
// from the oldest file up and drops tombstones only while that holds.
func (ns *Namespace) compact(ratio float64) (CompactStats, error) {
	ns.compactMu.Lock()
	defer ns.compactMu.Unlock()
	ids, err := ns.sealedFiles(ratio == 0)
	if err != nil {
		return CompactStats{}, err
	}
	var st CompactStats
	clean := true
	for _, id := range ids {
		df, deadData, worth := ns.candidate(id, ratio)
		if df == nil {
			continue
		}
		if !worth {
			clean = clean && deadData == 0
			continue
		}
		res, err := ns.compactFile(df, clean)
		if err != nil {
			return st, err
		}
		st.Files++
		st.Reclaimed += res.reclaimed
		clean = clean && res.deadDataLeft == 0
	}
	if st.Files > 0 {
		ns.snapDue.Store(true)
		ns.log.Info("compacted", "namespace", ns.name, "files", st.Files, "reclaimed_bytes", st.Reclaimed)
		return st, ns.snapshotIfDue()
	}
	return st, nil
}

// sealedFiles lists the sealed files, oldest first, sealing the active
// file first when seal is set and it has dead records.
func (ns *Namespace) sealedFiles(seal bool) ([]uint32, error) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if ns.gone != nil {
		return nil, ns.gone
	}
	if seal && ns.active.deadBytes > 0 {
		if err := ns.rotateLocked(); err != nil {
			return nil, fmt.Errorf("%w: %w", ErrWriteFailed, err)
		}
	}
	var ids []uint32
	for id := range ns.files {
		if id != ns.active.id {
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	return ids, nil
}

func (ns *Namespace) candidate(id uint32, ratio float64) (*dataFile, int64, bool) {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	df := ns.files[id]
	if df == nil || df == ns.active {
		return nil, 0, false
	}
	payload := float64(df.size - fileHeaderSize)
	worth := df.deadBytes > 0 && (ratio == 0 || float64(df.deadBytes) >= ratio*payload)
	return df, df.deadData, worth
}

type movedRecord struct {
	key  string
	lsn  uint64
	off  int64
	size int64
	tomb bool
}

type compactResult struct {
	reclaimed    int64
	deadDataLeft int64
}

// compactFile copies the live records of the sealed file df (and its
// tombstones, unless dropTombs) into a new file with the same id and a new
// stamp: written as an atomicfile temporary file, fsynced, renamed over
// the old file, directory fsynced. A crash leaves either the old or the new file, both complete,
// and a stale index file, which the loader detects by the stamp and
// rebuilds from; every record the new file lacks is dead in both versions.
func (ns *Namespace) compactFile(df *dataFile, dropTombs bool) (compactResult, error) {
	out, err := atomicfile.Create(df.path, 0o600)
	if err != nil {
		return compactResult{}, err
	}
	hdr := df.hdr
	hdr.stamp = ns.opts.stamp()
	moved, damaged, err := ns.copyLive(df, out.File, hdr, dropTombs)
	if err == nil {
		err = out.Sync()
	}
	if err == nil {
		err = ns.opts.failpoint("compact-written")
	}
	var res compactResult
	if err == nil {
		res, err = ns.commitCompaction(df, out, hdr, moved, damaged)
	}
	if err != nil {
		out.Abort() // removes the temporary file unless it was renamed
		out.Close()
		return compactResult{}, fmt.Errorf("compact %s: %w", df.path, err)
	}
	return res, nil
}

// copyLive writes the header and the records to keep to out. damaged is
// set when the file had ranges that do not decode.
func (ns *Namespace) copyLive(df *dataFile, out *os.File, hdr fileHeader, dropTombs bool) ([]movedRecord, bool, error) {
	w := bufio.NewWriterSize(out, 1<<20)
	w.Write(hdr.encode())
	var moved []movedRecord
	var buf []byte
	off := int64(fileHeaderSize)
	res, err := df.scan(fileHeaderSize, df.hdr.minLSN(), func(at int64, r *record) {
		if !ns.keep(df.id, at, r, dropTombs) {
			return
		}
		buf = appendRecord(buf[:0], r)
		w.Write(buf)
		moved = append(moved, movedRecord{key: string(r.key), lsn: r.lsn, off: off, size: int64(len(buf)), tomb: r.tombstone()})
		off += int64(len(buf))
	})
	if err != nil {
		return nil, false, err
	}
	return moved, len(res.bad) > 0 || res.tail > 0, w.Flush()
}

// keep reports whether the record at off of file id must survive: it is
// the current record of its key, or a tombstone that cannot be dropped yet.
func (ns *Namespace) keep(id uint32, off int64, r *record, dropTombs bool) bool {
	if r.tombstone() {
		return !dropTombs
	}
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	e, ok := ns.idx.keys[string(r.key)]
	return ok && e.file == id && e.off == off
}

// commitCompaction puts the new file in place of the old one and moves the
// index entries to it, all under the lock, so readers see either version.
func (ns *Namespace) commitCompaction(df *dataFile, out *atomicfile.File, hdr fileHeader, moved []movedRecord, damaged bool) (compactResult, error) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if ns.gone != nil {
		return compactResult{}, ns.gone
	}
	var err error
	if len(moved) == 0 {
		out.Abort()
		err = os.Remove(df.path)
		if err == nil {
			err = syncDir(ns.dir)
		}
	} else {
		err = out.CommitOpen()
	}
	if err == nil {
		err = ns.opts.failpoint("compact-renamed")
	}
	if err != nil {
		return compactResult{}, err
	}
	nf := ns.moveToLocked(&dataFile{id: df.id, path: df.path, f: out.File, hdr: hdr, size: fileHeaderSize, lastLSN: hdr.minLSN()}, moved)
	if damaged {
		ns.dropUnmovedLocked(df.id, moved)
	}
	df.f.Close()
	delete(ns.files, df.id)
	if len(moved) > 0 {
		ns.files[df.id] = nf
	}
	return compactResult{reclaimed: df.size - nf.size, deadDataLeft: nf.deadData}, nil
}

// moveToLocked points the index at the copies in nf and does nf's
// accounting.
func (ns *Namespace) moveToLocked(nf *dataFile, moved []movedRecord) *dataFile {
	for _, m := range moved {
		nf.records++
		nf.size += m.size
		nf.lastLSN = m.lsn
		switch {
		case m.tomb:
			nf.tombstones++
			nf.deadBytes += m.size
		case !ns.idx.move(m.key, m.lsn, nf.id, m.off):
			nf.deadData++ // superseded while the copy ran
			nf.deadBytes += m.size
		}
	}
	return nf
}

// dropUnmovedLocked removes the index entries that still point into the
// replaced file: their records were damaged and are gone with it.
func (ns *Namespace) dropUnmovedLocked(id uint32, moved []movedRecord) {
	at := make(map[string]int64, len(moved))
	for _, m := range moved {
		at[m.key] = m.off
	}
	for k, e := range ns.idx.keys {
		if off, ok := at[k]; e.file == id && (!ok || off != e.off) {
			ns.log.Error("damaged record dropped by compaction", "namespace", ns.name, "file", dataFileName(id), "lsn", e.lsn)
			ns.idx.remove(k)
		}
	}
}
