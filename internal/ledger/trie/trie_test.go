package trie

import (
	"bytes"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"testing"
)

// model is the map a tree must agree with.
type model map[string][]byte

func (m model) sorted() []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// randKey draws from a small alphabet with shared prefixes and keys that
// are prefixes of others, the cases a crit-bit trie must get right.
func randKey(r *rand.Rand) string {
	prefixes := []string{"", "a", "ab", "abc", "node/", "node/\x00\x00", "\x00", "\xff", "by-twin/\x00\x00\x00\x00\x00\x00\x00\x01"}
	k := prefixes[r.IntN(len(prefixes))]
	for n := r.IntN(4); n > 0; n-- {
		k += string([]byte{byte(r.IntN(4)) * 0x3f})
	}
	return k
}

func randRange(r *rand.Rand) Range {
	a, b := []byte(randKey(r)), []byte(randKey(r))
	if compare(a, b) > 0 {
		a, b = b, a
	}
	if r.IntN(5) == 0 {
		b = nil
	}
	return Range{Start: a, End: b}
}

func TestTreeMatchesMapAndProves(t *testing.T) {
	t.Parallel()
	for seed := uint64(0); seed < 40; seed++ {
		r := rand.New(rand.NewPCG(seed, 7))
		m := model{}
		tree := &Tree{}
		var versions []*Tree
		var models []model
		for step := 0; step < 30; step++ {
			writes := map[string][]byte{}
			for n := r.IntN(8); n >= 0; n-- {
				k := randKey(r)
				if r.IntN(3) == 0 {
					writes[k] = nil
				} else {
					writes[k] = []byte(fmt.Sprintf("v%d-%d", step, n))
				}
			}
			next, err := tree.Apply(writes)
			if err != nil {
				t.Fatal(err)
			}
			old := maps(m)
			for k, v := range writes {
				if v == nil {
					delete(m, k)
				} else {
					m[k] = v
				}
			}
			versions, models = append(versions, tree), append(models, old)
			tree = next
			checkTree(t, r, tree, m)
		}
		// Older versions are untouched by later writes.
		for i, v := range versions {
			checkTree(t, r, v, models[i])
		}
	}
}

func maps(m model) model {
	out := model{}
	for k, v := range m {
		out[k] = v
	}
	return out
}

func checkTree(t *testing.T, r *rand.Rand, tree *Tree, m model) {
	t.Helper()
	if tree.Len() != len(m) {
		t.Fatalf("len %d, model %d", tree.Len(), len(m))
	}
	// The root depends on the contents only.
	fresh := &Tree{}
	all := map[string][]byte{}
	for k, v := range m {
		all[k] = v
	}
	fresh, _ = fresh.Apply(all)
	if fresh.Hash() != tree.Hash() {
		t.Fatalf("root differs from a tree built in one go")
	}
	var got []string
	tree.Iterate(Range{}, func(k, _ []byte) bool { got = append(got, string(k)); return true })
	if !slices.Equal(got, m.sorted()) {
		t.Fatalf("iteration %q, want %q", got, m.sorted())
	}
	for i := 0; i < 6; i++ {
		k := randKey(r)
		rg := randRange(r)
		reads := Reads{Keys: [][]byte{[]byte(k)}, Ranges: []Range{rg}}
		p, err := DecodeProof(tree.Prove(reads))
		if err != nil {
			t.Fatal(err)
		}
		if p.Root() != tree.Hash() {
			t.Fatalf("proof root differs from the tree's")
		}
		v, ok, err := p.Get([]byte(k))
		want, wok := m[k]
		if err != nil || ok != wok || !bytes.Equal(v, want) {
			t.Fatalf("proof Get(%q) = %q %v %v, want %q %v", k, v, ok, err, want, wok)
		}
		var inRange []string
		if err := p.Iterate(rg, func(k, _ []byte) bool { inRange = append(inRange, string(k)); return true }); err != nil {
			t.Fatalf("iterate %q: %v", rg, err)
		}
		var wantRange []string
		for _, k := range m.sorted() {
			if rg.Contains([]byte(k)) {
				wantRange = append(wantRange, k)
			}
		}
		if !slices.Equal(inRange, wantRange) {
			t.Fatalf("range %q: %q, want %q", rg, inRange, wantRange)
		}
		// A read the proof was not made for fails or is answered right,
		// never answered wrong.
		other := randKey(r)
		v, ok, err = p.Get([]byte(other))
		want, wok = m[other]
		if err == nil && (ok != wok || !bytes.Equal(v, want)) {
			t.Fatalf("uncovered Get(%q) answered %q %v, truth %q %v", other, v, ok, want, wok)
		}
		if err != nil && !errors.Is(err, ErrIncomplete) {
			t.Fatal(err)
		}
	}
}

func TestStoppedScanProvesOnlyWhatItSaw(t *testing.T) {
	t.Parallel()
	tree, _ := (&Tree{}).Apply(map[string][]byte{"a1": {1}, "a2": {2}, "a3": {3}, "b": {4}})
	// A scan of "a" that stopped at a2 records [a, a2\x00).
	p, err := DecodeProof(tree.Prove(Reads{Ranges: []Range{{Start: []byte("a"), End: []byte("a2\x00")}}}))
	if err != nil {
		t.Fatal(err)
	}
	var seen []string
	err = p.Iterate(Range{Start: []byte("a"), End: []byte("b")}, func(k, _ []byte) bool {
		seen = append(seen, string(k))
		return string(k) != "a2"
	})
	if err != nil || !slices.Equal(seen, []string{"a1", "a2"}) {
		t.Fatalf("stopped scan: %q %v", seen, err)
	}
	// Going on past what was proven is refused, not answered.
	err = p.Iterate(Range{Start: []byte("a"), End: []byte("b")}, func([]byte, []byte) bool { return true })
	if !errors.Is(err, ErrIncomplete) {
		t.Fatalf("scan past the proof: %v", err)
	}
}

func TestTamperedProofChangesRoot(t *testing.T) {
	t.Parallel()
	w := map[string][]byte{}
	for i := 0; i < 50; i++ {
		w[fmt.Sprintf("contract/%03d", i)] = []byte(fmt.Sprintf("owner %d", i%7))
	}
	tree, _ := (&Tree{}).Apply(w)
	proof := tree.Prove(Reads{Keys: [][]byte{[]byte("contract/007")}})
	for i := len(proofMagic) + 1; i < len(proof); i++ {
		for _, flip := range []byte{1, 0x80} {
			bad := slices.Clone(proof)
			bad[i] ^= flip
			p, err := DecodeProof(bad)
			if err != nil {
				continue
			}
			if p.Root() == tree.Hash() {
				t.Fatalf("flipping byte %d kept the root", i)
			}
		}
	}
}

func TestEmptyTree(t *testing.T) {
	t.Parallel()
	tree := &Tree{}
	p, err := DecodeProof(tree.Prove(Reads{Keys: [][]byte{[]byte("x")}, Ranges: []Range{{}}}))
	if err != nil {
		t.Fatal(err)
	}
	if p.Root() != tree.Hash() {
		t.Fatal("empty root")
	}
	if _, ok, err := p.Get([]byte("x")); ok || err != nil {
		t.Fatalf("get in empty: %v %v", ok, err)
	}
	one, _ := tree.Apply(map[string][]byte{"x": {1}})
	none, _ := one.Apply(map[string][]byte{"x": nil})
	if none.Hash() != tree.Hash() || none.Len() != 0 {
		t.Fatal("deleting the last key does not give the empty tree")
	}
}

func TestCritBitOrder(t *testing.T) {
	t.Parallel()
	keys := [][]byte{{}, {0}, {0, 0}, {0, 1}, {1}, {0x7f}, {0x80}, {0xff}, {0xff, 0}}
	for i := range keys {
		for j := range keys {
			a, b := keys[i], keys[j]
			c := critBit(a, b)
			if i == j {
				if c != noCrit {
					t.Fatalf("critBit(%x, %x) = %d for equal keys", a, b, c)
				}
				continue
			}
			// The encoding keeps byte order: the key with the 0 bit sorts first.
			if (bit(a, c) == 0) != (compare(a, b) < 0) {
				t.Fatalf("critBit(%x, %x) = %d disagrees with byte order", a, b, c)
			}
		}
	}
}
