package trie

import (
	"bytes"
	"errors"
	"testing"
)

// FuzzDecodeProof: hostile proof bytes never panic, and whatever decodes
// answers reads without panicking.
func FuzzDecodeProof(f *testing.F) {
	tree, _ := (&Tree{}).Apply(map[string][]byte{"a": {1}, "ab": {2}, "b\x00": {3}, "": {4}})
	f.Add(tree.Prove(Reads{Keys: [][]byte{[]byte("ab")}}))
	f.Add(tree.Prove(Reads{Ranges: []Range{{Start: []byte("a")}}}))
	f.Add((&Tree{}).Prove(Reads{}))
	f.Fuzz(func(t *testing.T, b []byte) {
		p, err := DecodeProof(b)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("error %v is not ErrMalformed", err)
			}
			return
		}
		_ = p.Root()
		for _, k := range [][]byte{nil, []byte("a"), []byte("ab"), b} {
			if _, _, err := p.Get(k); err != nil && !errors.Is(err, ErrIncomplete) {
				t.Fatal(err)
			}
		}
		_ = p.Iterate(Range{}, func(k, v []byte) bool { return true })
	})
}

// FuzzTreeOps applies writes decoded from the input to a tree and a map
// and checks that they agree, that proofs of every key verify against the
// root, and that the root does not depend on the order of writes.
func FuzzTreeOps(f *testing.F) {
	f.Add([]byte("\x01a\x01b\x00a\x02ab\x01\x00"))
	f.Fuzz(func(t *testing.T, b []byte) {
		m := model{}
		tree := &Tree{}
		for len(b) >= 2 {
			op, n := b[0], int(b[1])%8
			b = b[2:]
			if n > len(b) {
				n = len(b)
			}
			k := string(b[:n])
			b = b[n:]
			w := map[string][]byte{}
			if op%3 == 0 {
				w[k] = nil
				delete(m, k)
			} else {
				w[k] = []byte{op}
				m[k] = []byte{op}
			}
			var err error
			if tree, err = tree.Apply(w); err != nil {
				t.Fatal(err)
			}
		}
		all := map[string][]byte{}
		var keys [][]byte
		for k, v := range m {
			all[k] = v
			keys = append(keys, []byte(k))
		}
		fresh, _ := (&Tree{}).Apply(all)
		if fresh.Hash() != tree.Hash() || tree.Len() != len(m) {
			t.Fatal("tree disagrees with a fresh build of the same map")
		}
		p, err := DecodeProof(tree.Prove(Reads{Keys: append(keys, []byte("absent\xff"))}))
		if err != nil || p.Root() != tree.Hash() {
			t.Fatalf("proof: %v", err)
		}
		for k, v := range m {
			got, ok, err := p.Get([]byte(k))
			if err != nil || !ok || !bytes.Equal(got, v) {
				t.Fatalf("Get(%q) = %q %v %v", k, got, ok, err)
			}
		}
		if _, ok, err := p.Get([]byte("absent\xff")); err != nil || (ok != (m["absent\xff"] != nil)) {
			t.Fatalf("absent key: %v %v", ok, err)
		}
	})
}
