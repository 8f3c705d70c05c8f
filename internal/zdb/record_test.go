package zdb

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
)

func encodeForTest(r record) []byte { return appendRecord(nil, &r) }

func TestRecordRoundTrip(t *testing.T) {
	t.Parallel()
	for _, r := range []record{
		{lsn: 1, ts: 1700000000123456789, key: []byte("k"), value: []byte("v")},
		{lsn: 2, key: bytes.Repeat([]byte{0}, MaxKeySize), value: nil},
		{flags: flagTombstone, lsn: 1 << 60, ts: -1, key: []byte("gone")},
		{lsn: 3, key: []byte("\xff\x00"), value: bytes.Repeat([]byte("ab"), 4096)},
	} {
		b := encodeForTest(r)
		got, n, err := decodeRecord(append(b, "trailing"...))
		if err != nil || n != len(b) {
			t.Fatalf("decode: n=%d/%d, %v", n, len(b), err)
		}
		if got.flags != r.flags || got.lsn != r.lsn || got.ts != r.ts || !bytes.Equal(got.key, r.key) || !bytes.Equal(got.value, r.value) {
			t.Fatalf("round trip: %+v → %+v", r, got)
		}
	}
}

func TestRecordRejects(t *testing.T) {
	t.Parallel()
	good := encodeForTest(record{lsn: 9, key: []byte("key"), value: []byte("value")})
	for _, tc := range []struct {
		name string
		edit func(b []byte) []byte
		want error
	}{
		{"short header", func(b []byte) []byte { return b[:20] }, errShort},
		{"short body", func(b []byte) []byte { return b[:len(b)-1] }, errShort},
		{"magic", func(b []byte) []byte { b[0] = 'X'; return b }, errMagic},
		{"version", func(b []byte) []byte { b[2] = 2; return b }, errVersion},
		{"unknown flag", func(b []byte) []byte { b[3] = 2; return b }, errHeader},
		{"reserved", func(b []byte) []byte { b[6] = 1; return b }, errHeader},
		{"empty key", func(b []byte) []byte { b[4] = 0; return b }, errHeader},
		{"value over 8 MiB", func(b []byte) []byte { b[11] = 1; return b }, errHeader},
		{"tombstone with value", func(b []byte) []byte { b[3] = flagTombstone; return b }, errHeader},
		{"value bit", func(b []byte) []byte { b[len(b)-1] ^= 1; return b }, errChecksum},
		{"lsn bit", func(b []byte) []byte { b[12] ^= 1; return b }, errChecksum},
	} {
		_, _, err := decodeRecord(tc.edit(bytes.Clone(good)))
		if !errors.Is(err, tc.want) {
			t.Errorf("%s: %v, want %v", tc.name, err, tc.want)
		}
	}
	h := fileHeader{id: 7, stamp: 42, startLSN: 100, startSeq: 5}
	if got, err := decodeFileHeader(h.encode()); err != nil || got != h {
		t.Fatalf("file header round trip: %+v, %v", got, err)
	}
	b := h.encode()
	b[20] ^= 1
	if _, err := decodeFileHeader(b); !errors.Is(err, errChecksum) {
		t.Fatalf("damaged file header: %v", err)
	}
}

// FuzzRecordDecode: no input makes the decoder panic or read out of
// bounds, and whatever it accepts encodes back to the same bytes.
func FuzzRecordDecode(f *testing.F) {
	f.Add(encodeForTest(record{lsn: 1, ts: 5, key: []byte("k"), value: []byte("value")}))
	f.Add(encodeForTest(record{flags: flagTombstone, lsn: 2, key: []byte("k")}))
	f.Add(encodeForTest(record{lsn: 3, key: bytes.Repeat([]byte{1}, 255), value: make([]byte, 300)})[:100])
	f.Add([]byte("ZR\x01\x00\x01\x00\x00\x00\xff\xff\xff\xff"))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, n, err := decodeRecord(b)
		if err != nil {
			if !isFormatError(err) {
				t.Fatalf("unexpected error kind: %v", err)
			}
			return
		}
		if n > len(b) || n != r.size() || len(r.key) == 0 || len(r.key) > MaxKeySize || len(r.value) > MaxValueSize {
			t.Fatalf("accepted a record out of bounds: n=%d len=%d key=%d value=%d", n, len(b), len(r.key), len(r.value))
		}
		if re := appendRecord(nil, &r); !bytes.Equal(re, b[:n]) {
			t.Fatalf("re-encoding differs:\n%x\n%x", re, b[:n])
		}
	})
}

// FuzzDataFileScan: a data file with any content after its header is
// scanned without panic; every record handed out is valid, in order, and
// inside what scan says is good.
func FuzzDataFileScan(f *testing.F) {
	two := append(encodeForTest(record{lsn: 1, key: []byte("a"), value: []byte("1")}),
		encodeForTest(record{lsn: 2, key: []byte("b"), value: []byte("22")})...)
	f.Add(two)
	f.Add(append(bytes.Clone(two), "ZR\x01 torn"...))
	f.Add(append(append([]byte("junk"), two...), two[:40]...))
	f.Fuzz(func(t *testing.T, body []byte) {
		path := filepath.Join(t.TempDir(), dataFileName(1))
		hdr := fileHeader{id: 1, startLSN: 1}
		if err := os.WriteFile(path, append(hdr.encode(), body...), 0o600); err != nil {
			t.Fatal(err)
		}
		df, err := openDataFile(filepath.Dir(path), 1, false)
		if err != nil {
			t.Fatal(err)
		}
		defer df.f.Close()
		var last uint64
		res, err := df.scan(fileHeaderSize, 0, func(off int64, r *record) {
			got, _, err := df.recordAt(off, res0(df))
			if err != nil || got.lsn != r.lsn || r.lsn <= last {
				t.Fatalf("scan handed out a bad record at %d: %v", off, err)
			}
			last = r.lsn
		})
		if err != nil {
			t.Fatal(err)
		}
		if res.end+res.tail != int64(fileHeaderSize+len(body)) || res.end < fileHeaderSize {
			t.Fatalf("scan result %+v for %d bytes", res, fileHeaderSize+len(body))
		}
	})
}

func res0(df *dataFile) int64 {
	n, _ := df.fileLen()
	return n
}
