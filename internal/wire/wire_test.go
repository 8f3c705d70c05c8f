package wire

import (
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite golden files in testdata/")

type sample struct {
	Name  string            `cbor:"name"`
	Seq   uint64            `cbor:"seq"`
	Delta int64             `cbor:"delta,omitempty"`
	Keys  [][]byte          `cbor:"keys,omitempty"`
	Tags  map[string]string `cbor:"tags,omitempty"`
	Flag  bool              `cbor:"flag,omitempty"`
}

type vector struct {
	Name    string `json:"name"`
	Tag     string `json:"tag"`
	Version uint16 `json:"version"`
	CBOR    string `json:"cbor"`
	Digest  string `json:"sha256"`
}

func vectors() []struct {
	name, tag string
	version   uint16
	v         any
} {
	return []struct {
		name, tag string
		version   uint16
		v         any
	}{
		{"minimal", "test", 1, sample{Name: "a", Seq: 0}},
		{"full", "test", 1, sample{Name: "zerogrid", Seq: 1 << 40, Delta: -5, Keys: [][]byte{{1, 2}, {}}, Tags: map[string]string{"zz": "1", "a": "2", "bb": "3"}, Flag: true}},
		{"other-tag", "tx", 1, sample{Name: "a", Seq: 0}},
		{"other-version", "test", 2, sample{Name: "a", Seq: 0}},
	}
}

// TestGoldenVectors pins the canonical encoding and the digests. A change
// here breaks every signature ever made: refresh with -update only for a
// deliberate format change, and bump the version when you do.
func TestGoldenVectors(t *testing.T) {
	t.Parallel()
	var got []vector
	for _, c := range vectors() {
		b, err := Marshal(c.v)
		if err != nil {
			t.Fatal(err)
		}
		d, err := Digest(c.tag, c.version, c.v)
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, vector{c.name, c.tag, c.version, hex.EncodeToString(b), hex.EncodeToString(d[:])})
	}
	path := filepath.Join("testdata", "vectors.json")
	if *update {
		b, _ := json.MarshalIndent(got, "", "  ")
		if err := os.WriteFile(path, append(b, '\n'), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	raw, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("read golden file (run with -update to create): %v", err)
	}
	var want []vector
	if err := json.Unmarshal(raw, &want); err != nil {
		t.Fatal(err)
	}
	if len(want) != len(got) {
		t.Fatalf("golden has %d vectors, code %d", len(want), len(got))
	}
	seen := map[string]bool{}
	for i := range got {
		if got[i] != want[i] {
			t.Errorf("vector %s:\n got %+v\nwant %+v", got[i].Name, got[i], want[i])
		}
		if seen[got[i].Digest] {
			t.Errorf("vector %s: digest collides with another vector", got[i].Name)
		}
		seen[got[i].Digest] = true
	}
}

func TestMapKeysSortedBytewise(t *testing.T) {
	t.Parallel()
	b, err := Marshal(map[string]int{"bb": 1, "a": 2, "c": 3})
	if err != nil {
		t.Fatal(err)
	}
	// Core deterministic: shorter keys first, then bytewise: "a","c","bb".
	if want := "a36161026163036262620" + "1"; hex.EncodeToString(b) != want {
		t.Fatalf("got %x, want %s", b, want)
	}
}

func TestUnmarshalRejects(t *testing.T) {
	t.Parallel()
	good, _ := Marshal(sample{Name: "a", Seq: 5})
	cases := []struct {
		name string
		in   string
	}{
		{"trailing", hex.EncodeToString(append(append([]byte{}, good...), 0))},
		{"non-shortest int", "a2637365711805646e616d656161"}, // seq 5 with a 1-byte argument
		{"unsorted keys", "a2646e616d65616163736571" + "05"},
		{"duplicate key", "a263736571056373657106"},
		{"unknown field", "a3617801637365710" + "5646e616d656161"},
		{"indefinite map", "bf6373657105646e616d656161ff"},
		{"indefinite string", "a2637365710564" + "6e616d657f6161ff"},
		{"tag", "c1a26373657105646e616d656161"},
		{"explicit zero omitempty", "a3637365710564" + "6e616d65616165" + "64656c746100"},
		{"empty", ""},
		{"truncated", hex.EncodeToString(good[:len(good)-1])},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			in, err := hex.DecodeString(c.in)
			if err != nil {
				t.Fatalf("bad test hex: %v", err)
			}
			var s sample
			err = Unmarshal(in, &s)
			t.Logf("%s: %v", c.name, err)
			if err == nil {
				t.Fatalf("accepted %x as %+v", in, s)
			}
		})
	}
	var s sample
	if err := Unmarshal(good, &s); err != nil || s.Name != "a" || s.Seq != 5 {
		t.Fatalf("good input: %+v %v", s, err)
	}
	if err := Unmarshal(make([]byte, MaxInputSize+1), &s); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("oversize: %v", err)
	}
}

func TestDigestSeparatesDomains(t *testing.T) {
	t.Parallel()
	v := sample{Name: "x"}
	a, _ := Digest("a", 1, v)
	b, _ := Digest("b", 1, v)
	c, _ := Digest("a", 2, v)
	if a == b || a == c || b == c {
		t.Fatal("digests of different tags/versions collide")
	}
	if _, err := Digest("", 1, v); err == nil {
		t.Fatal("empty tag accepted")
	}
	if _, err := Digest("a\x00b", 1, v); err == nil {
		t.Fatal("tag with NUL accepted")
	}
}

func FuzzUnmarshal(f *testing.F) {
	for _, c := range vectors() {
		b, _ := Marshal(c.v)
		f.Add(b)
	}
	f.Add([]byte{0xbf, 0xff})
	f.Fuzz(func(t *testing.T, data []byte) {
		var s sample
		if err := Unmarshal(data, &s); err == nil {
			again, err := Marshal(s)
			if err != nil || string(again) != string(data) {
				t.Fatalf("accepted non-round-tripping input %x", data)
			}
		}
		var v any
		if err := CheckCanonical(data); err == nil {
			if err := Unmarshal(data, &v); err != nil {
				t.Fatal("CheckCanonical and Unmarshal disagree")
			}
		}
	})
}
