package trie

import (
	"encoding/binary"

	"runtime"
	"testing"
)

// benchTree is a tree of n contract-like records (a 13-byte key, a
// 512-byte value).
func benchTree(b *testing.B, n int) *Tree {
	w := make(map[string][]byte, n)
	val := make([]byte, 512)
	for i := range n {
		w[benchKey(uint64(i))] = val
	}
	t, err := (&Tree{}).Apply(w)
	if err != nil {
		b.Fatal(err)
	}
	t.Hash()
	return t
}

func benchKey(id uint64) string {
	k := []byte("contract/\x00\x00\x00\x00\x00\x00\x00\x00")
	binary.BigEndian.PutUint64(k[9:], id)
	return string(k)
}

// BenchmarkApplyBlock applies a block of 1000 writes (new records and
// rewrites) to a tree of 100 000 and hashes the new root: what
// FinalizeBlock adds per block for proofs.
func BenchmarkApplyBlock(b *testing.B) {
	t := benchTree(b, 100_000)
	val := make([]byte, 512)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		w := make(map[string][]byte, 1000)
		for j := range 1000 {
			w[benchKey(uint64((i*1000+j)%150_000))] = val
		}
		next, err := t.Apply(w)
		if err != nil {
			b.Fatal(err)
		}
		next.Hash()
	}
}

// BenchmarkProveGet proves one key of a tree of 100 000.
func BenchmarkProveGet(b *testing.B) {
	t := benchTree(b, 100_000)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		p := t.Prove(Reads{Keys: [][]byte{[]byte(benchKey(uint64(i % 100_000)))}})
		if len(p) == 0 {
			b.Fatal("empty proof")
		}
	}
}

// BenchmarkVerifyGet decodes and checks a proof of one key.
func BenchmarkVerifyGet(b *testing.B) {
	t := benchTree(b, 100_000)
	proof := t.Prove(Reads{Keys: [][]byte{[]byte(benchKey(4242))}})
	root := t.Hash()
	b.SetBytes(int64(len(proof)))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		p, err := DecodeProof(proof)
		if err != nil || p.Root() != root {
			b.Fatal("proof does not verify")
		}
		if _, ok, err := p.Get([]byte(benchKey(4242))); !ok || err != nil {
			b.Fatal("key not proven")
		}
	}
}

// BenchmarkMemoryPerKey reports the heap the tree's nodes take per key
// beyond the values themselves (which the state holds anyway).
func BenchmarkMemoryPerKey(b *testing.B) {
	for range b.N {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		t := benchTree(b, 100_000)
		runtime.GC()
		runtime.ReadMemStats(&after)
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/100_000, "heap-bytes/key")
		runtime.KeepAlive(t)
	}
}
