package catalog

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"

	"github.com/zerogrid/zerogrid/internal/storage"
)

func fuzzKeys(t testing.TB) *keys {
	k, err := deriveKeys(bytes.Repeat([]byte{7}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sampleRef() storage.SegmentRef {
	return storage.SegmentRef{ID: storage.SegmentID{1, 2}, K: 2, M: 1, PlainLen: 5,
		Shards: []storage.ShardLoc{{Index: 0, Backend: "b0"}, {Index: 2, Backend: "b2"}}}
}

// FuzzDecodeRoot: no bytes make a root record panic, and a record that
// opens re-seals to one that opens to the same body.
func FuzzDecodeRoot(f *testing.F) {
	k := fuzzKeys(f)
	good, err := sealRoot(k, rand.Reader, rootBody{Seq: 3, Catalog: []storage.SegmentRef{sampleRef()}})
	if err != nil {
		f.Fatal(err)
	}
	f.Add(uint64(3), good)
	f.Add(uint64(4), good)
	f.Add(uint64(3), good[:len(good)-1])
	f.Add(uint64(1), []byte("ZGRT"))
	f.Fuzz(func(t *testing.T, seq uint64, data []byte) {
		if body, err := openRoot(k, seq, data); err == nil && body.Seq != seq {
			t.Fatalf("opened seq %d as %d", body.Seq, seq)
		}
		_, _ = decodeRootBody(data) // the plaintext decoder, past the MAC
	})
}

// FuzzDecodeCatalog: no bytes make a catalog plaintext or a sealed catalog
// panic; whatever decodes re-encodes to the same bytes (canonical).
func FuzzDecodeCatalog(f *testing.F) {
	k := fuzzKeys(f)
	c := &Catalog{}
	c, _ = c.with(Entry{Name: "a", Size: 5, Mode: 0o644, MTime: 1, Segments: []storage.SegmentRef{sampleRef()}})
	c, _ = c.with(Entry{Name: "b/c"})
	c3, _ := c.with(Entry{Name: "l", Mode: 0o777, Link: "../a", UID: 1, GID: 2, CTime: 3, ATime: 4})
	if p3, err := encodeCatalog(c3); err == nil {
		f.Add(p3)
	}
	plain, err := encodeCatalog(c)
	if err != nil {
		f.Fatal(err)
	}
	sealed, err := sealCatalog(k, rand.Reader, 1, plain)
	if err != nil {
		f.Fatal(err)
	}
	f.Add(plain)
	f.Add(sealed)
	f.Add(plain[:len(plain)-3])
	f.Fuzz(func(t *testing.T, data []byte) {
		_, _ = openCatalog(k, 1, data)
		got, err := decodeCatalog(data)
		if err != nil {
			return
		}
		again, err := encodeCatalog(got)
		if err != nil || !bytes.Equal(again, data) {
			t.Fatalf("decoded catalog re-encodes differently: %v", err)
		}
	})
}

func TestCatalogEncodingRoundTrip(t *testing.T) {
	t.Parallel()
	k := fuzzKeys(t)
	c := &Catalog{}
	for _, n := range []string{"z", "a/b", "a", "é/x"} {
		c, _ = c.with(Entry{Name: n})
	}
	c, old := c.with(Entry{Name: "a", Mode: 0o600})
	if old == nil || old.Mode != 0 {
		t.Fatalf("replace returned %+v", old)
	}
	plain, err := encodeCatalog(c)
	if err != nil {
		t.Fatal(err)
	}
	sealed, err := sealCatalog(k, rand.Reader, 5, plain)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := openCatalog(k, 6, sealed); err == nil {
		t.Fatal("catalog of seq 5 opened as seq 6")
	}
	got, err := openCatalog(k, 5, sealed)
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, e := range got.List("") {
		names = append(names, e.Name)
	}
	if want := "a a/b z é/x"; join(names) != want {
		t.Fatalf("names %q, want %q", join(names), want)
	}
	if e, ok := got.Lookup("a"); !ok || e.Mode != 0o600 {
		t.Fatalf("lookup a: %+v %v", e, ok)
	}
}

func join(s []string) string {
	var b bytes.Buffer
	for i, x := range s {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(x)
	}
	return b.String()
}

func TestValidName(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"a", true}, {"dir/file.txt", true}, {"é", true},
		{"", false}, {"/a", false}, {"a/", false}, {"a//b", false}, {"a/../b", false}, {".", false}, {"a\nb", false}, {"\xff", false},
	} {
		if err := ValidName(tc.name); (err == nil) != tc.ok {
			t.Errorf("ValidName(%q) = %v", tc.name, err)
		}
	}
}

// TestEntryTooLarge: an entry that would not decode is refused at encoding,
// so it is never committed.
func TestEntryTooLarge(t *testing.T) {
	t.Parallel()
	ref := storage.SegmentRef{K: 10, M: 10, PlainLen: 1}
	for i := range 20 {
		ref.Shards = append(ref.Shards, storage.ShardLoc{Index: i, Backend: "backend-with-a-long-name", Digest: [32]byte{1}})
	}
	e := Entry{Name: "big"}
	for range 2000 {
		e.Segments = append(e.Segments, ref)
		e.Size++
	}
	c, _ := (&Catalog{}).with(e)
	if _, err := encodeCatalog(c); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("encode a %d-segment entry: %v", len(e.Segments), err)
	}
}
