package trie

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
)

// Proof format (docs/formats/state.md): a magic and version, the node
// count, then the nodes of the partial trie in pre-order.
const (
	proofMagic   = "zgst"
	proofVersion = 1

	tagLeaf     = 0 // u(len key) key u(len val) val
	tagLeafHash = 1 // u(len key) key [32]SHA-256(val)
	tagInner    = 2 // u(crit) prefix(crit); two children follow
	tagFolded   = 3 // u(crit) prefix(crit) [32]left [32]right
	tagEmpty    = 4 // the empty tree (the only node)

	// MaxProofNodes bounds the nodes a decoder accepts.
	MaxProofNodes = 1 << 20
	// MaxValueLen bounds one value in a proof.
	MaxValueLen = 4 << 20
)

// Errors a verifier returns.
var (
	ErrMalformed  = errors.New("trie: malformed proof")
	ErrIncomplete = errors.New("trie: the proof does not cover this read")
)

// Reads is what a proof must cover: keys read (present or not) and ranges
// scanned.
type Reads struct {
	Keys   [][]byte
	Ranges []Range
}

// Prove returns a proof that covers reads: every node on the path of each
// key and every node a range may hold keys in, in full; every other
// subtree folded to its prefix and child hashes.
func (t *Tree) Prove(reads Reads) []byte {
	var b bytes.Buffer
	b.WriteString(proofMagic)
	b.WriteByte(proofVersion)
	var nodes [][]byte
	if t.root == nil {
		nodes = append(nodes, []byte{tagEmpty})
	} else {
		nodes = prove(t.root, &reads, nodes)
	}
	b.Write(binary.AppendUvarint(nil, uint64(len(nodes))))
	for _, n := range nodes {
		b.Write(n)
	}
	return b.Bytes()
}

func prove(n *node, r *Reads, out [][]byte) [][]byte {
	if !n.inner {
		e := []byte{tagLeafHash}
		if r.wantsKey(n.key) {
			e[0] = tagLeaf
		}
		e = appendBytes(e, n.key)
		if e[0] == tagLeaf {
			e = appendBytes(e, n.val)
		} else {
			h := sha256.Sum256(n.val)
			e = append(e, h[:]...)
		}
		return append(out, e)
	}
	p := prefixOf(n.key, n.crit)
	if !r.wantsBlock(p, n.crit) {
		e := binary.AppendUvarint([]byte{tagFolded}, uint64(n.crit))
		e = append(e, p...)
		l, rr := n.left.digest(), n.right.digest()
		e = append(append(e, l[:]...), rr[:]...)
		return append(out, e)
	}
	e := binary.AppendUvarint([]byte{tagInner}, uint64(n.crit))
	out = append(out, append(e, p...))
	out = prove(n.left, r, out)
	return prove(n.right, r, out)
}

func (r *Reads) wantsKey(key []byte) bool {
	for _, k := range r.Keys {
		if bytes.Equal(k, key) {
			return true
		}
	}
	for _, rg := range r.Ranges {
		if rg.Contains(key) {
			return true
		}
	}
	return false
}

// wantsBlock reports whether a read may look below a node with prefix p.
func (r *Reads) wantsBlock(p []byte, crit uint32) bool {
	for _, k := range r.Keys {
		if hasPrefix(k, p, crit) {
			return true
		}
	}
	for _, rg := range r.Ranges {
		if !rg.disjoint(p, crit) {
			return true
		}
	}
	return false
}

func appendBytes(b, v []byte) []byte {
	return append(binary.AppendUvarint(b, uint64(len(v))), v...)
}

// Partial is a verified partial trie: a proof whose root is known. Reads
// outside what it covers fail with ErrIncomplete.
type Partial struct {
	root *pnode
	hash [32]byte
}

// pnode is a node of a proof: a leaf (with its value, or only its hash),
// an inner node with both children, or a folded subtree.
type pnode struct {
	tag         byte
	key, val    []byte // leaf key and value; inner and folded: the prefix
	crit        uint32
	lh, rh      [32]byte // folded: the children's hashes
	valHash     [32]byte // leaf hash: the value's hash
	left, right *pnode
}

// DecodeProof parses a proof and computes its root hash. It checks the
// shape (canonical prefixes, children inside their parent's prefix on the
// right side, bounds), not the root: compare Root with a trusted hash.
func DecodeProof(b []byte) (*Partial, error) {
	d := decoder{b: b}
	if !bytes.HasPrefix(b, []byte(proofMagic)) || len(b) < len(proofMagic)+1 {
		return nil, fmt.Errorf("%w: no proof header", ErrMalformed)
	}
	d.b = b[len(proofMagic):]
	if v := d.byte(); v != proofVersion {
		return nil, fmt.Errorf("%w: version %d, want %d", ErrMalformed, v, proofVersion)
	}
	count := d.uvarint()
	if d.err != nil || count == 0 || count > MaxProofNodes {
		return nil, fmt.Errorf("%w: node count %d", ErrMalformed, count)
	}
	d.left = int(count)
	root, err := d.tree()
	if err != nil {
		return nil, err
	}
	if d.left != 0 || len(d.b) != 0 {
		return nil, fmt.Errorf("%w: trailing nodes or bytes", ErrMalformed)
	}
	p := &Partial{root: root}
	if root.tag == tagEmpty {
		p.hash, p.root = emptyHash, nil
	} else {
		p.hash = root.digest()
	}
	return p, nil
}

// Root is the root hash the proof commits to.
func (p *Partial) Root() [32]byte { return p.hash }

type decoder struct {
	b    []byte
	left int // nodes still to read
	err  error
}

func (d *decoder) fail(format string, a ...any) {
	if d.err == nil {
		d.err = fmt.Errorf("%w: "+format, append([]any{ErrMalformed}, a...)...)
	}
}

func (d *decoder) byte() byte {
	if len(d.b) == 0 {
		d.fail("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *decoder) uvarint() uint64 {
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail("bad varint")
		return 0
	}
	d.b = d.b[n:]
	return v
}

func (d *decoder) bytes(n int) []byte {
	if n < 0 || n > len(d.b) {
		d.fail("truncated")
		return nil
	}
	v := d.b[:n:n]
	d.b = d.b[n:]
	return v
}

func (d *decoder) hash() (h [32]byte) {
	copy(h[:], d.bytes(32))
	return h
}

func (d *decoder) sized(limit int) []byte {
	n := d.uvarint()
	if n > uint64(limit) {
		d.fail("length %d over limit %d", n, limit)
		return nil
	}
	return d.bytes(int(n))
}

func (d *decoder) crit() uint32 {
	c := d.uvarint()
	if c >= 9*MaxKeyLen+9 {
		d.fail("crit bit %d out of range", c)
		return 0
	}
	return uint32(c)
}

// tree reads the nodes of one trie in pre-order.
func (d *decoder) tree() (*pnode, error) {
	// An explicit stack: a hostile proof may be deep.
	type frame struct {
		n    *pnode
		next uint // which child to read next (0, 1, 2 = done)
	}
	var stack []frame
	var root *pnode
	for {
		if d.left == 0 {
			return nil, fmt.Errorf("%w: missing nodes", ErrMalformed)
		}
		d.left--
		n := d.node()
		if d.err != nil {
			return nil, d.err
		}
		if n.tag == tagEmpty && (len(stack) > 0 || root != nil) {
			return nil, fmt.Errorf("%w: an empty tree inside a tree", ErrMalformed)
		}
		if len(stack) > 0 {
			top := &stack[len(stack)-1]
			if err := fits(top.n, top.next, n); err != nil {
				return nil, err
			}
			if top.next == 0 {
				top.n.left = n
			} else {
				top.n.right = n
			}
			top.next++
		} else {
			root = n
		}
		if n.tag == tagInner {
			stack = append(stack, frame{n: n})
		}
		for len(stack) > 0 && stack[len(stack)-1].next == 2 {
			stack = stack[:len(stack)-1]
		}
		if len(stack) == 0 {
			return root, nil
		}
	}
}

func (d *decoder) node() *pnode {
	n := &pnode{tag: d.byte()}
	switch n.tag {
	case tagLeaf:
		n.key = d.sized(MaxKeyLen)
		n.val = d.sized(MaxValueLen)
	case tagLeafHash:
		n.key = d.sized(MaxKeyLen)
		n.valHash = d.hash()
	case tagInner, tagFolded:
		n.crit = d.crit()
		if d.err != nil {
			return n
		}
		n.key = d.bytes(prefixLen(n.crit))
		if d.err == nil && !canonicalPrefix(n.key, n.crit) {
			d.fail("prefix is not canonical for crit bit %d", n.crit)
		}
		if n.tag == tagFolded {
			n.lh, n.rh = d.hash(), d.hash()
		}
	case tagEmpty:
	default:
		d.fail("unknown node tag %d", n.tag)
	}
	return n
}

// fits checks that child c hangs correctly under inner node p on side: it
// is inside p's prefix, on the side its crit bit says, and deeper.
func fits(p *pnode, side uint, c *pnode) error {
	if (c.tag == tagInner || c.tag == tagFolded) && c.crit <= p.crit {
		return fmt.Errorf("%w: a child branches at bit %d, not below its parent's %d", ErrMalformed, c.crit, p.crit)
	}
	if !hasPrefix(c.key, p.key, p.crit) || bit(c.key, p.crit) != side {
		return fmt.Errorf("%w: a node is not on its side of its parent", ErrMalformed)
	}
	return nil
}

func (n *pnode) digest() [32]byte {
	switch n.tag {
	case tagLeaf:
		return leafHash(n.key, sha256.Sum256(n.val))
	case tagLeafHash:
		return leafHash(n.key, n.valHash)
	case tagFolded:
		return innerHash(n.crit, n.key, n.lh, n.rh)
	}
	return innerHash(n.crit, n.key, n.left.digest(), n.right.digest())
}

// Get returns the value at key, or ok false when the proof shows there is
// none; ErrIncomplete when the proof does not say.
func (p *Partial) Get(key []byte) (val []byte, ok bool, err error) {
	n := p.root
	for n != nil {
		switch n.tag {
		case tagInner:
			if !hasPrefix(key, n.key, n.crit) {
				return nil, false, nil
			}
			n = n.child(bit(key, n.crit))
		case tagFolded:
			if hasPrefix(key, n.key, n.crit) {
				return nil, false, ErrIncomplete
			}
			return nil, false, nil
		case tagLeaf:
			if bytes.Equal(n.key, key) {
				return n.val, true, nil
			}
			return nil, false, nil
		case tagLeafHash:
			if bytes.Equal(n.key, key) {
				return nil, false, ErrIncomplete
			}
			return nil, false, nil
		}
	}
	return nil, false, nil
}

func (n *pnode) child(b uint) *pnode {
	if b == 0 {
		return n.left
	}
	return n.right
}

// Iterate calls fn for each key in r in order until fn returns false, or
// fails with ErrIncomplete on reaching a part of r the proof folded away.
func (p *Partial) Iterate(r Range, fn func(key, val []byte) bool) error {
	_, err := piterate(p.root, r, fn)
	return err
}

func piterate(n *pnode, r Range, fn func(key, val []byte) bool) (bool, error) {
	if n == nil {
		return true, nil
	}
	switch n.tag {
	case tagLeaf:
		if r.Contains(n.key) {
			return fn(n.key, n.val), nil
		}
		return true, nil
	case tagLeafHash:
		if r.Contains(n.key) {
			return false, ErrIncomplete
		}
		return true, nil
	}
	if r.disjoint(n.key, n.crit) {
		return true, nil
	}
	if n.tag == tagFolded {
		return false, ErrIncomplete
	}
	more, err := piterate(n.left, r, fn)
	if !more || err != nil {
		return more, err
	}
	return piterate(n.right, r, fn)
}
