package zdb

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/zerogrid/zerogrid/internal/atomicfile"
)

// dataFile is one append-only data file of a namespace. Only the newest file
// of a namespace (the active one) is appended to; the others are sealed and
// change only when compaction replaces them as a whole. The accounting
// fields are guarded by the namespace's lock.
type dataFile struct {
	id   uint32
	path string
	f    *os.File
	hdr  fileHeader
	size int64 // end of the last good record: where the next append goes

	lastLSN    uint64 // LSN of the last record, or startLSN-1
	records    int64  // records in the file, tombstones included
	deadData   int64  // value records that a later SET or DEL superseded
	tombstones int64
	deadBytes  int64 // bytes of dead records, tombstones and skipped corrupt ranges
}

func dataFileName(id uint32) string { return fmt.Sprintf("d%08x.dat", id) }

func parseDataFileName(name string) (uint32, bool) {
	hex, ok := strings.CutPrefix(name, "d")
	hex, ok2 := strings.CutSuffix(hex, ".dat")
	if !ok || !ok2 || len(hex) != 8 {
		return 0, false
	}
	id, err := strconv.ParseUint(hex, 16, 32)
	return uint32(id), err == nil && id > 0
}

// createDataFile writes a new data file holding only its header, durably,
// and opens it for appending.
func createDataFile(dir string, hdr fileHeader) (*dataFile, error) {
	path := filepath.Join(dir, dataFileName(hdr.id))
	f, err := atomicfile.Create(path, 0o600)
	if err != nil {
		return nil, err
	}
	_, err = f.Write(hdr.encode())
	if err == nil {
		err = f.CommitOpen()
	}
	if err != nil {
		f.Abort()
		f.Close()
		return nil, fmt.Errorf("create data file %s: %w", path, err)
	}
	return &dataFile{id: hdr.id, path: path, f: f.File, hdr: hdr, size: fileHeaderSize, lastLSN: hdr.minLSN()}, nil
}

// openDataFile opens an existing data file and checks its header. size is
// the file's length until scan finds where the good records end.
func openDataFile(dir string, id uint32, writable bool) (*dataFile, error) {
	path := filepath.Join(dir, dataFileName(id))
	flag := os.O_RDONLY
	if writable {
		flag = os.O_RDWR
	}
	f, err := os.OpenFile(path, flag, 0)
	if err != nil {
		return nil, err
	}
	df, err := checkDataFile(f, path, id)
	if err != nil {
		f.Close()
		return nil, err
	}
	return df, nil
}

func checkDataFile(f *os.File, path string, id uint32) (*dataFile, error) {
	b := make([]byte, fileHeaderSize)
	if _, err := io.ReadFull(io.NewSectionReader(f, 0, fileHeaderSize), b); err != nil {
		return nil, fmt.Errorf("data file %s: header: %w", path, errShort)
	}
	hdr, err := decodeFileHeader(b)
	if err != nil {
		return nil, fmt.Errorf("data file %s: header: %w", path, err)
	}
	if hdr.id != id {
		return nil, fmt.Errorf("data file %s: header says file id %d: %w", path, hdr.id, errHeader)
	}
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	return &dataFile{id: id, path: path, f: f, hdr: hdr, size: st.Size(), lastLSN: hdr.minLSN()}, nil
}

// append writes one encoded record, given in parts, at the end of the file
// and returns its offset. A failed write is cut off again, so the file never
// keeps half a record that a later append would bury. (A crash between the
// parts leaves a torn tail, which the loader cuts.)
func (df *dataFile) append(lsn uint64, parts ...[]byte) (int64, error) {
	off := df.size
	at := off
	for _, p := range parts {
		if _, err := df.f.WriteAt(p, at); err != nil {
			_ = df.f.Truncate(off)
			return 0, fmt.Errorf("append to %s: %w", df.path, err)
		}
		at += int64(len(p))
	}
	df.size = at
	df.records++
	df.lastLSN = lsn
	return off, nil
}

// readRecord reads and verifies the record at off, whose lengths the index
// knows. Any mismatch is errChecksum or errHeader: the bytes are not served.
func (df *dataFile) readRecord(off int64, keyLen, valueLen int) (record, error) {
	b := make([]byte, recordHeaderSize+keyLen+valueLen)
	if _, err := df.f.ReadAt(b, off); err != nil {
		if errors.Is(err, io.EOF) {
			return record{}, errShort
		}
		return record{}, fmt.Errorf("read %s at %d: %w", df.path, off, err)
	}
	h, err := parseRecordHeader(b)
	if err != nil {
		return record{}, err
	}
	if h.keyLen != keyLen || h.valueLen != valueLen {
		return record{}, errHeader
	}
	r, _, err := finishRecord(h, b[:recordHeaderSize], b[recordHeaderSize:])
	return r, err
}

// isFormatError tells a record that does not decode from an I/O failure.
func isFormatError(err error) bool {
	for _, e := range []error{errShort, errMagic, errVersion, errHeader, errChecksum} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

func (df *dataFile) sync() error {
	if err := df.f.Sync(); err != nil {
		return fmt.Errorf("fsync %s: %w", df.path, err)
	}
	return nil
}

// truncate cuts the file at off, durably.
func (df *dataFile) truncate(off int64) error {
	if err := df.f.Truncate(off); err != nil {
		return fmt.Errorf("truncate %s at %d: %w", df.path, off, err)
	}
	df.size = off
	return df.sync()
}

// fileLen is the file's length on disk, which may exceed size by a torn tail.
func (df *dataFile) fileLen() (int64, error) {
	st, err := df.f.Stat()
	if err != nil {
		return 0, err
	}
	return st.Size(), nil
}

// resyncChunk is how much of a file resync searches at a time.
const resyncChunk = 1 << 20

// resync finds the first valid record after a bad one at off, or -1 when
// nothing valid follows (a torn tail). It first trusts the bad record's
// header to skip it, then searches byte by byte for a record magic. A
// candidate must decode with its checksum and an LSN above minLSN, so a
// record-shaped value inside a damaged record is not taken for a record.
func (df *dataFile) resync(off, limit int64, minLSN uint64) (int64, error) {
	var hb [recordHeaderSize]byte
	if _, err := df.f.ReadAt(hb[:], off); err == nil {
		if h, err := parseRecordHeader(hb[:]); err == nil && off+int64(h.total()) < limit {
			next := off + int64(h.total())
			if r, _, err := df.recordAt(next, limit); err == nil && r.lsn > minLSN {
				return next, nil
			}
		}
	}
	buf := make([]byte, resyncChunk+2)
	for base := off + 1; base < limit; base += resyncChunk {
		n, err := df.f.ReadAt(buf[:min(int64(len(buf)), limit-base)], base)
		if err != nil && !errors.Is(err, io.EOF) {
			return 0, err
		}
		for i := 0; i < n; {
			j := bytes.Index(buf[i:n], []byte(recordMagic+"\x01"))
			if j < 0 {
				break
			}
			cand := base + int64(i+j)
			if r, _, err := df.recordAt(cand, limit); err == nil && r.lsn > minLSN {
				return cand, nil
			}
			i += j + 1
		}
	}
	return -1, nil
}

// recordAt reads and verifies the record at off without knowing its
// lengths; the record must end at or before limit.
func (df *dataFile) recordAt(off, limit int64) (record, int, error) {
	var hb [recordHeaderSize]byte
	if off+recordHeaderSize > limit {
		return record{}, 0, errShort
	}
	if _, err := df.f.ReadAt(hb[:], off); err != nil {
		return record{}, 0, readErr(err)
	}
	h, err := parseRecordHeader(hb[:])
	if err != nil {
		return record{}, 0, err
	}
	if off+int64(h.total()) > limit {
		return record{}, 0, errShort
	}
	body := make([]byte, h.keyLen+h.valueLen)
	if _, err := df.f.ReadAt(body, off+recordHeaderSize); err != nil {
		return record{}, 0, readErr(err)
	}
	return finishRecord(h, hb[:], body)
}

func readErr(err error) error {
	if errors.Is(err, io.EOF) {
		return errShort
	}
	return err
}

// badRange is a stretch of a data file that holds no valid record.
type badRange struct {
	off, length int64
	err         error
}

// scanResult is what scan found: end is the offset after the last good
// record; tail counts the bytes after end that hold no valid record (a torn
// tail when the file is the active one); bad lists skipped ranges before end.
type scanResult struct {
	end  int64
	tail int64
	bad  []badRange
}

// scan calls fn for each valid record from offset from to the end of the
// file, in order, skipping ranges that do not decode. LSNs must increase
// along a file; a record that breaks this is treated as damage.
func (df *dataFile) scan(from int64, minLSN uint64, fn func(off int64, r *record)) (scanResult, error) {
	limit, err := df.fileLen()
	if err != nil {
		return scanResult{}, err
	}
	var res scanResult
	off := from
	for off < limit {
		r, n, err := df.recordAt(off, limit)
		if err == nil && r.lsn <= minLSN {
			err = fmt.Errorf("%w: LSN %d does not follow %d", errHeader, r.lsn, minLSN)
		}
		if err == nil {
			fn(off, &r)
			minLSN = r.lsn
			off += int64(n)
			continue
		}
		if !isFormatError(err) {
			return res, err
		}
		next, rerr := df.resync(off, limit, minLSN)
		if rerr != nil {
			return res, rerr
		}
		if next < 0 {
			res.end, res.tail = off, limit-off
			return res, nil
		}
		res.bad = append(res.bad, badRange{off: off, length: next - off, err: err})
		off = next
	}
	res.end = off
	return res, nil
}
