package zdb

import (
	"encoding/binary"
	"fmt"
	"hash/crc32"
)

// Limits of what a namespace stores. They are part of the data format: a
// record header cannot describe a larger key, and readers reject a larger
// value as corrupt.
const (
	MaxKeySize   = 255
	MaxValueSize = 8 << 20
)

// Data file layout, version 1 (docs/formats/zdb.md). All integers are
// little-endian.
//
// File header, 48 bytes:
//
//	0  8  magic "ZGDBDATA"
//	8  2  version (1)
//	10 2  reserved, 0
//	12 4  file id (matches the file name)
//	16 8  stamp: random, new each time the file is (re)written
//	24 8  start LSN: the namespace's next LSN when the file was created
//	32 8  start seq: the namespace's next sequence id when the file was created
//	40 4  reserved, 0
//	44 4  CRC32C of bytes 0..44
//
// Record, 32-byte header then key then value:
//
//	0  2  magic "ZR"
//	2  1  version (1)
//	3  1  flags: bit 0 tombstone (a DEL); other bits 0
//	4  1  key length, 1..255
//	5  3  reserved, 0
//	8  4  value length, 0..8 MiB (0 for a tombstone)
//	12 8  LSN: log sequence number, unique and increasing per namespace
//	20 8  timestamp, Unix nanoseconds
//	28 4  CRC32C of header bytes 0..28, key and value
const (
	fileMagic         = "ZGDBDATA"
	fileVersion       = 1
	fileHeaderSize    = 48
	recordMagic       = "ZR"
	recordVersion     = 1
	recordHeaderSize  = 32
	flagTombstone     = 1
	recordCRCCoverage = 28
)

// record is one entry of a data file. Decoded records alias the buffer they
// were decoded from.
type record struct {
	flags byte
	lsn   uint64
	ts    int64
	key   []byte
	value []byte
}

func (r *record) tombstone() bool { return r.flags&flagTombstone != 0 }

func (r *record) size() int { return recordHeaderSize + len(r.key) + len(r.value) }

// recordSize is the on-disk size of a record with these lengths.
func recordSize(keyLen, valueLen int) int64 {
	return int64(recordHeaderSize + keyLen + valueLen)
}

func crc32c() *crc32.Table { return crc32.MakeTable(crc32.Castagnoli) }

// appendRecord encodes r after dst. The caller has checked the limits.
func appendRecord(dst []byte, r *record) []byte {
	return append(appendRecordHead(dst, r), r.value...)
}

// appendRecordHead encodes r's header and key after dst: the record is
// that followed by r.value, which a writer can then write without a copy.
func appendRecordHead(dst []byte, r *record) []byte {
	var h [recordHeaderSize]byte
	copy(h[0:2], recordMagic)
	h[2] = recordVersion
	h[3] = r.flags
	h[4] = byte(len(r.key))
	binary.LittleEndian.PutUint32(h[8:12], uint32(len(r.value)))
	binary.LittleEndian.PutUint64(h[12:20], r.lsn)
	binary.LittleEndian.PutUint64(h[20:28], uint64(r.ts))
	sum := crc32.Update(0, crc32c(), h[:recordCRCCoverage])
	sum = crc32.Update(sum, crc32c(), r.key)
	sum = crc32.Update(sum, crc32c(), r.value)
	binary.LittleEndian.PutUint32(h[28:32], sum)
	dst = append(dst, h[:]...)
	return append(dst, r.key...)
}

// recordHeader is a parsed, plausible record header: its fields are within
// the limits, but the checksum is not verified until the body is read.
type recordHeader struct {
	flags    byte
	keyLen   int
	valueLen int
	lsn      uint64
	ts       int64
	crc      uint32
}

func (h recordHeader) total() int { return recordHeaderSize + h.keyLen + h.valueLen }

// parseRecordHeader checks everything a header can say about itself.
func parseRecordHeader(b []byte) (recordHeader, error) {
	if len(b) < recordHeaderSize {
		return recordHeader{}, errShort
	}
	if string(b[0:2]) != recordMagic {
		return recordHeader{}, errMagic
	}
	if b[2] != recordVersion {
		return recordHeader{}, errVersion
	}
	h := recordHeader{
		flags:    b[3],
		keyLen:   int(b[4]),
		valueLen: int(binary.LittleEndian.Uint32(b[8:12])),
		lsn:      binary.LittleEndian.Uint64(b[12:20]),
		ts:       int64(binary.LittleEndian.Uint64(b[20:28])),
		crc:      binary.LittleEndian.Uint32(b[28:32]),
	}
	switch {
	case h.flags&^flagTombstone != 0, b[5] != 0, b[6] != 0, b[7] != 0:
		return recordHeader{}, errHeader
	case h.keyLen == 0, h.valueLen > MaxValueSize:
		return recordHeader{}, errHeader
	case h.flags&flagTombstone != 0 && h.valueLen != 0:
		return recordHeader{}, errHeader
	}
	return h, nil
}

// decodeRecord decodes the record at the start of b and returns it with its
// encoded size. It never reads past b and never panics; the record's key
// and value alias b.
func decodeRecord(b []byte) (record, int, error) {
	h, err := parseRecordHeader(b)
	if err != nil {
		return record{}, 0, err
	}
	n := h.total()
	if len(b) < n {
		return record{}, 0, errShort
	}
	return finishRecord(h, b[:recordHeaderSize], b[recordHeaderSize:n])
}

// finishRecord verifies the checksum of a header and its body (key then
// value) and builds the record.
func finishRecord(h recordHeader, hdr, body []byte) (record, int, error) {
	if len(body) != h.keyLen+h.valueLen {
		return record{}, 0, errShort
	}
	sum := crc32.Update(0, crc32c(), hdr[:recordCRCCoverage])
	sum = crc32.Update(sum, crc32c(), body)
	if sum != h.crc {
		return record{}, 0, errChecksum
	}
	r := record{
		flags: h.flags,
		lsn:   h.lsn,
		ts:    h.ts,
		key:   body[:h.keyLen:h.keyLen],
		value: body[h.keyLen:],
	}
	return r, h.total(), nil
}

// fileHeader is the header of a data file.
type fileHeader struct {
	id       uint32
	stamp    uint64
	startLSN uint64
	startSeq uint64
}

// minLSN is the LSN that every record of the file is above.
func (h fileHeader) minLSN() uint64 {
	if h.startLSN == 0 {
		return 0
	}
	return h.startLSN - 1
}

func (h fileHeader) encode() []byte {
	b := make([]byte, fileHeaderSize)
	copy(b[0:8], fileMagic)
	binary.LittleEndian.PutUint16(b[8:10], fileVersion)
	binary.LittleEndian.PutUint32(b[12:16], h.id)
	binary.LittleEndian.PutUint64(b[16:24], h.stamp)
	binary.LittleEndian.PutUint64(b[24:32], h.startLSN)
	binary.LittleEndian.PutUint64(b[32:40], h.startSeq)
	binary.LittleEndian.PutUint32(b[44:48], crc32.Checksum(b[:44], crc32c()))
	return b
}

func decodeFileHeader(b []byte) (fileHeader, error) {
	if len(b) < fileHeaderSize {
		return fileHeader{}, errShort
	}
	if string(b[0:8]) != fileMagic {
		return fileHeader{}, errMagic
	}
	if crc32.Checksum(b[:44], crc32c()) != binary.LittleEndian.Uint32(b[44:48]) {
		return fileHeader{}, errChecksum
	}
	if v := binary.LittleEndian.Uint16(b[8:10]); v != fileVersion {
		return fileHeader{}, fmt.Errorf("%w: data file version %d, this build reads %d", errVersion, v, fileVersion)
	}
	return fileHeader{
		id:       binary.LittleEndian.Uint32(b[12:16]),
		stamp:    binary.LittleEndian.Uint64(b[16:24]),
		startLSN: binary.LittleEndian.Uint64(b[24:32]),
		startSeq: binary.LittleEndian.Uint64(b[32:40]),
	}, nil
}
