package trie

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"sort"
	"sync"
)

// ErrKeyTooLong is returned by Apply for a key longer than MaxKeyLen.
var ErrKeyTooLong = errors.New("trie: key too long")

// node is a leaf (inner == false: key and value) or an inner node (crit,
// two children, and key: some key below it, whose first crit bits are the
// node's prefix). Nodes of a published Tree never change; gen marks the
// nodes one Apply created, which it may still change in place.
type node struct {
	inner       bool
	key, val    []byte
	crit        uint32
	left, right *node
	gen         uint64

	once sync.Once
	hash [32]byte
}

// emptyHash is the root of the empty tree: SHA-256 of nothing.
var emptyHash = sha256.Sum256(nil)

// Tree is one immutable version of the state. The zero Tree is empty. A
// Tree is safe for concurrent readers.
type Tree struct {
	root *node
	size int
	gen  uint64
}

// Len is the number of keys.
func (t *Tree) Len() int { return t.size }

// Hash is the root hash: the app hash of this version.
func (t *Tree) Hash() [32]byte {
	if t.root == nil {
		return emptyHash
	}
	return t.root.digest()
}

// digest computes (once) and returns n's hash.
func (n *node) digest() [32]byte {
	n.once.Do(func() {
		if n.inner {
			n.hash = innerHash(n.crit, prefixOf(n.key, n.crit), n.left.digest(), n.right.digest())
		} else {
			n.hash = leafHash(n.key, sha256.Sum256(n.val))
		}
	})
	return n.hash
}

func leafHash(key []byte, valHash [32]byte) [32]byte {
	h := sha256.New()
	var n [4]byte
	h.Write([]byte{0})
	binary.BigEndian.PutUint32(n[:], uint32(len(key)))
	h.Write(n[:])
	h.Write(key)
	h.Write(valHash[:])
	var out [32]byte
	h.Sum(out[:0])
	return out
}

func innerHash(crit uint32, prefix []byte, left, right [32]byte) [32]byte {
	h := sha256.New()
	var n [4]byte
	h.Write([]byte{1})
	binary.BigEndian.PutUint32(n[:], crit)
	h.Write(n[:])
	h.Write(prefix)
	h.Write(left[:])
	h.Write(right[:])
	var out [32]byte
	h.Sum(out[:0])
	return out
}

// Get returns the value at key; ok is false when there is none. The value
// must not be modified.
func (t *Tree) Get(key []byte) (val []byte, ok bool) {
	n := t.root
	for n != nil && n.inner {
		if !hasPrefix(key, n.key, n.crit) {
			return nil, false
		}
		n = n.child(bit(key, n.crit))
	}
	if n == nil || !bytes.Equal(n.key, key) {
		return nil, false
	}
	return n.val, true
}

func (n *node) child(b uint) *node {
	if b == 0 {
		return n.left
	}
	return n.right
}

// Iterate calls fn for each key in r in order until fn returns false.
// Keys and values must not be modified.
func (t *Tree) Iterate(r Range, fn func(key, val []byte) bool) {
	iterate(t.root, r, fn)
}

func iterate(n *node, r Range, fn func(key, val []byte) bool) bool {
	if n == nil {
		return true
	}
	if !n.inner {
		if r.Contains(n.key) {
			return fn(n.key, n.val)
		}
		return true
	}
	if r.disjoint(n.key, n.crit) {
		return true
	}
	return iterate(n.left, r, fn) && iterate(n.right, r, fn)
}

// Apply returns the version with writes applied: a nil value deletes its
// key. t itself is unchanged.
func (t *Tree) Apply(writes map[string][]byte) (*Tree, error) {
	keys := make([]string, 0, len(writes))
	for k := range writes {
		if len(k) > MaxKeyLen {
			return nil, fmt.Errorf("%w: %d bytes", ErrKeyTooLong, len(k))
		}
		keys = append(keys, k)
	}
	sort.Strings(keys) // neighbours share paths: fewer copies
	out := &Tree{root: t.root, size: t.size, gen: t.gen + 1}
	for _, k := range keys {
		key := []byte(k)
		if v := writes[k]; v != nil {
			out.root = out.insert(out.root, key, v)
		} else {
			out.root = out.remove(out.root, key)
		}
	}
	return out, nil
}

// own returns n itself when this Apply created it, or a copy it may change.
func (t *Tree) own(n *node) *node {
	if n.gen == t.gen {
		return n
	}
	return &node{inner: n.inner, key: n.key, val: n.val, crit: n.crit, left: n.left, right: n.right, gen: t.gen}
}

func (t *Tree) insert(n *node, key, val []byte) *node {
	if n == nil {
		t.size++
		return &node{key: key, val: val, gen: t.gen}
	}
	c := critBit(n.key, key)
	if n.inner && c >= n.crit {
		m := t.own(n)
		if bit(key, n.crit) == 0 {
			m.left = t.insert(n.left, key, val)
		} else {
			m.right = t.insert(n.right, key, val)
		}
		m.key = m.left.key
		return m
	}
	if !n.inner && c == noCrit {
		m := t.own(n)
		m.val = val
		return m
	}
	// key leaves n's prefix (or differs from leaf n) at bit c: a new inner
	// node there, with n on one side and the new leaf on the other.
	t.size++
	leaf := &node{key: key, val: val, gen: t.gen}
	in := &node{inner: true, crit: c, gen: t.gen, left: n, right: leaf}
	if bit(key, c) == 0 {
		in.left, in.right = leaf, n
	}
	in.key = in.left.key
	return in
}

func (t *Tree) remove(n *node, key []byte) *node {
	if n == nil {
		return nil
	}
	if !n.inner {
		if bytes.Equal(n.key, key) {
			t.size--
			return nil
		}
		return n
	}
	if !hasPrefix(key, n.key, n.crit) {
		return n
	}
	left, right := n.left, n.right
	if bit(key, n.crit) == 0 {
		left = t.remove(left, key)
	} else {
		right = t.remove(right, key)
	}
	switch {
	case left == n.left && right == n.right:
		return n
	case left == nil:
		return right
	case right == nil:
		return left
	}
	m := t.own(n)
	m.left, m.right, m.key = left, right, left.key
	return m
}
