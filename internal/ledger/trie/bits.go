package trie

import "math/bits"

// MaxKeyLen bounds a key, so that a crit bit fits in a u32 with room and a
// hostile proof cannot describe absurdly deep paths.
const MaxKeyLen = 1024

// noCrit is critBit's answer for equal keys.
const noCrit = ^uint32(0)

// bit returns bit i of key's encoding: groups of 9 bits, a continuation bit
// (1: a byte follows) and the byte's bits, most significant first. Bits
// past the terminating 0 read as 0.
func bit(key []byte, i uint32) uint {
	j, r := i/9, i%9
	if j >= uint32(len(key)) {
		return 0
	}
	if r == 0 {
		return 1
	}
	return uint(key[j]>>(8-r)) & 1
}

// critBit is the first bit where the encodings of a and b differ, or noCrit
// when a and b are equal.
func critBit(a, b []byte) uint32 {
	n := min(len(a), len(b))
	for j := 0; j < n; j++ {
		if x := a[j] ^ b[j]; x != 0 {
			return uint32(9*j+1) + uint32(bits.LeadingZeros8(x))
		}
	}
	if len(a) == len(b) {
		return noCrit
	}
	return uint32(9 * n) // one ends here: its continuation bit is 0
}

// hasPrefix reports whether key's first crit bits equal those of p.
func hasPrefix(key, p []byte, crit uint32) bool { return critBit(key, p) >= crit }

// prefixLen is how many bytes hold the first crit bits.
func prefixLen(crit uint32) int {
	n := int(crit / 9)
	if crit%9 != 0 {
		n++
	}
	return n
}

// prefixOf returns the canonical bytes of key's first crit bits: the whole
// bytes, then (when crit falls inside a byte's group) that byte masked to
// the bits inside the prefix. key must have at least prefixLen(crit) bytes.
func prefixOf(key []byte, crit uint32) []byte {
	n := prefixLen(crit)
	p := append([]byte(nil), key[:n]...)
	if r := crit % 9; r != 0 {
		p[n-1] &= prefixMask(r)
	}
	return p
}

// prefixMask keeps the r-1 high bits of a byte (r = crit%9, 1..8).
func prefixMask(r uint32) byte { return ^byte(0xff >> (r - 1)) }

// canonicalPrefix reports whether p is the canonical prefix for crit.
func canonicalPrefix(p []byte, crit uint32) bool {
	if len(p) != prefixLen(crit) {
		return false
	}
	if r := crit % 9; r != 0 {
		return p[len(p)-1]&^prefixMask(r) == 0
	}
	return true
}

// Range is the keys k with Start <= k < End; a nil End has no bound.
type Range struct {
	Start, End []byte
}

// Contains reports whether key is in r.
func (r Range) Contains(key []byte) bool {
	return compare(key, r.Start) >= 0 && (r.End == nil || compare(key, r.End) < 0)
}

// disjoint reports whether no key with prefix p (crit bits) can be in r.
// It is conservative: a block that reaches a bound by prefix counts as
// touching it. Provers and verifiers use the same rule, so a prover expands
// exactly the subtrees a verifier will look into.
func (r Range) disjoint(p []byte, crit uint32) bool {
	if c := critBit(p, r.Start); c < crit && bit(p, c) == 0 {
		return true // the whole block sorts before Start
	}
	if r.End != nil {
		if c := critBit(p, r.End); c < crit && bit(p, c) == 1 {
			return true // the whole block sorts after End
		}
	}
	return false
}

func compare(a, b []byte) int {
	n := min(len(a), len(b))
	for i := 0; i < n; i++ {
		if a[i] != b[i] {
			if a[i] < b[i] {
				return -1
			}
			return 1
		}
	}
	switch {
	case len(a) < len(b):
		return -1
	case len(a) > len(b):
		return 1
	}
	return 0
}
