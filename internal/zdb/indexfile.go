package zdb

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"hash/crc32"
	"io"
)

// Index file layout, version 1 (docs/formats/zdb.md): a snapshot of a
// namespace's index, little-endian, written atomically. It is only a cache:
// a loader that finds it missing, damaged or out of step with the data files
// rebuilds the index from the data files.
//
//	header  40 bytes: magic "ZGDBINDX", version u16 (1), reserved u16,
//	        file count u32, entry count u64, next LSN u64, next seq u64
//	files   64 bytes each: id u32, reserved u32, stamp u64, covered length
//	        u64, last LSN u64, records u64, dead data records u64,
//	        tombstones u64, dead bytes u64
//	entries key length u8, key, file id u32, offset u64, value length u32,
//	        LSN u64, timestamp u64
//	trailer CRC32C u32 of everything before it
const (
	indexMagic      = "ZGDBINDX"
	indexVersion    = 1
	indexFileName   = "index"
	indexHeaderSize = 40
	indexFileSize   = 64
	indexEntryFixed = 1 + 4 + 8 + 4 + 8 + 8
)

// snapshot is a decoded index file.
type snapshot struct {
	nextLSN uint64
	nextSeq uint64
	files   []snapFile
	keys    map[string]entry
}

// snapFile is what the snapshot knew about one data file: its identity
// (id and stamp), how far it had read it, and its accounting.
type snapFile struct {
	id         uint32
	stamp      uint64
	covered    int64
	lastLSN    uint64
	records    int64
	deadData   int64
	tombstones int64
	deadBytes  int64
}

func snapFileOf(df *dataFile) snapFile {
	return snapFile{
		id: df.id, stamp: df.hdr.stamp, covered: df.size, lastLSN: df.lastLSN,
		records: df.records, deadData: df.deadData, tombstones: df.tombstones, deadBytes: df.deadBytes,
	}
}

// writeSnapshot encodes s to w.
func writeSnapshot(w io.Writer, s *snapshot) error {
	h := crc32.New(crc32c())
	bw := bufio.NewWriter(io.MultiWriter(w, h))
	b := make([]byte, 0, indexHeaderSize+indexFileSize)
	b = append(b, indexMagic...)
	b = binary.LittleEndian.AppendUint16(b, indexVersion)
	b = binary.LittleEndian.AppendUint16(b, 0)
	b = binary.LittleEndian.AppendUint32(b, uint32(len(s.files)))
	b = binary.LittleEndian.AppendUint64(b, uint64(len(s.keys)))
	b = binary.LittleEndian.AppendUint64(b, s.nextLSN)
	b = binary.LittleEndian.AppendUint64(b, s.nextSeq)
	bw.Write(b)
	for _, f := range s.files {
		b = b[:0]
		b = binary.LittleEndian.AppendUint32(b, f.id)
		b = binary.LittleEndian.AppendUint32(b, 0)
		for _, v := range []uint64{f.stamp, uint64(f.covered), f.lastLSN, uint64(f.records),
			uint64(f.deadData), uint64(f.tombstones), uint64(f.deadBytes)} {
			b = binary.LittleEndian.AppendUint64(b, v)
		}
		bw.Write(b)
	}
	for k, e := range s.keys {
		b = append(b[:0], byte(len(k)))
		b = append(b, k...)
		b = binary.LittleEndian.AppendUint32(b, e.file)
		b = binary.LittleEndian.AppendUint64(b, uint64(e.off))
		b = binary.LittleEndian.AppendUint32(b, e.vlen)
		b = binary.LittleEndian.AppendUint64(b, e.lsn)
		b = binary.LittleEndian.AppendUint64(b, uint64(e.ts))
		bw.Write(b)
	}
	if err := bw.Flush(); err != nil {
		return err
	}
	_, err := w.Write(binary.LittleEndian.AppendUint32(nil, h.Sum32()))
	return err
}

// decodeSnapshot decodes an index file. It checks the structure (lengths,
// counts, checksum, limits), never allocates more than b justifies, and
// never panics; whether the snapshot matches the data files is the
// loader's business.
func decodeSnapshot(b []byte) (*snapshot, error) {
	if len(b) < indexHeaderSize+4 {
		return nil, errShort
	}
	body, trailer := b[:len(b)-4], b[len(b)-4:]
	if err := checkIndexHeader(body, trailer); err != nil {
		return nil, err
	}
	nFiles := uint64(binary.LittleEndian.Uint32(body[12:16]))
	nKeys := binary.LittleEndian.Uint64(body[16:24])
	rest := body[indexHeaderSize:]
	if nFiles > uint64(len(rest))/indexFileSize || nKeys > uint64(len(rest))/(indexEntryFixed+1) {
		return nil, errShort
	}
	s := &snapshot{
		nextLSN: binary.LittleEndian.Uint64(body[24:32]),
		nextSeq: binary.LittleEndian.Uint64(body[32:40]),
		files:   make([]snapFile, nFiles),
		keys:    make(map[string]entry, nKeys),
	}
	for i := range s.files {
		s.files[i] = decodeSnapFile(rest[:indexFileSize])
		rest = rest[indexFileSize:]
	}
	for range nKeys {
		k, e, n, err := decodeSnapEntry(rest)
		if err != nil {
			return nil, err
		}
		if _, dup := s.keys[k]; dup {
			return nil, fmt.Errorf("%w: key listed twice", errHeader)
		}
		s.keys[k] = e
		rest = rest[n:]
	}
	if len(rest) != 0 {
		return nil, fmt.Errorf("%w: %d bytes after the last entry", errHeader, len(rest))
	}
	return s, nil
}

func checkIndexHeader(body, trailer []byte) error {
	if string(body[:8]) != indexMagic {
		return errMagic
	}
	if crc32.Checksum(body, crc32c()) != binary.LittleEndian.Uint32(trailer) {
		return errChecksum
	}
	if v := binary.LittleEndian.Uint16(body[8:10]); v != indexVersion {
		return fmt.Errorf("%w: index file version %d, this build reads %d", errVersion, v, indexVersion)
	}
	return nil
}

func decodeSnapFile(b []byte) snapFile {
	u := func(i int) uint64 { return binary.LittleEndian.Uint64(b[8+8*i:]) }
	return snapFile{
		id: binary.LittleEndian.Uint32(b[0:4]), stamp: u(0), covered: int64(u(1)), lastLSN: u(2),
		records: int64(u(3)), deadData: int64(u(4)), tombstones: int64(u(5)), deadBytes: int64(u(6)),
	}
}

func decodeSnapEntry(b []byte) (string, entry, int, error) {
	if len(b) < 1 {
		return "", entry{}, 0, errShort
	}
	kl := int(b[0])
	n := 1 + kl + indexEntryFixed - 1
	if kl == 0 || len(b) < n {
		return "", entry{}, 0, errShort
	}
	key := string(b[1 : 1+kl])
	f := b[1+kl:]
	e := entry{
		file: binary.LittleEndian.Uint32(f[0:4]),
		off:  int64(binary.LittleEndian.Uint64(f[4:12])),
		vlen: binary.LittleEndian.Uint32(f[12:16]),
		lsn:  binary.LittleEndian.Uint64(f[16:24]),
		ts:   int64(binary.LittleEndian.Uint64(f[24:32])),
	}
	if e.vlen > MaxValueSize || e.off < fileHeaderSize {
		return "", entry{}, 0, errHeader
	}
	return key, e, n, nil
}
