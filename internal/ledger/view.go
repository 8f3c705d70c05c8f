package ledger

import (
	"errors"
	"fmt"

	"github.com/zerogrid/zerogrid/internal/ledger/trie"
)

// view is what queries read: the committed state at one height (on a
// validator) or a verified proof of part of it (on a client). Queries are
// functions of a view, so a client answers a query again from the proof it
// got and trusts only what it computed itself.
type view interface {
	reader
	// scan calls fn for each key with the given prefix, from key from on
	// (from "" = the whole prefix), in order, until fn returns false.
	scan(prefix, from string, fn func(key string, val []byte) (bool, error)) error
}

// treeView reads one version of the trie and, when reads is set, records
// what it read so that a proof can cover exactly that.
type treeView struct {
	t     *trie.Tree
	reads *trie.Reads
}

func (v *treeView) get(key string) ([]byte, error) {
	if v.reads != nil {
		v.reads.Keys = append(v.reads.Keys, []byte(key))
	}
	val, ok := v.t.Get([]byte(key))
	if !ok {
		return nil, nil
	}
	return val, nil
}

func (v *treeView) scan(prefix, from string, fn func(key string, val []byte) (bool, error)) error {
	return scanTree(v.t, v.reads, prefix, from, fn)
}

// scanRange is the range a scan of prefix from from covers.
func scanRange(prefix, from string) trie.Range {
	start := prefix
	if from > prefix {
		start = from
	}
	return trie.Range{Start: []byte(start), End: prefixEnd([]byte(prefix))}
}

// scanTree scans t; with reads set it records the range it looked at: up
// to and including the key where fn stopped, or the whole range.
func scanTree(t *trie.Tree, reads *trie.Reads, prefix, from string, fn func(key string, val []byte) (bool, error)) error {
	r := scanRange(prefix, from)
	var err error
	var last []byte
	t.Iterate(r, func(k, v []byte) bool {
		var more bool
		more, err = fn(string(k), v)
		if err != nil || !more {
			last = k
			return false
		}
		return true
	})
	if reads != nil {
		seen := r
		if last != nil {
			seen.End = append(append([]byte{}, last...), 0) // the least key after last
		}
		reads.Ranges = append(reads.Ranges, seen)
	}
	return err
}

// proofView reads a verified partial trie. A read the proof does not cover
// fails with an error wrapping ErrBadProof.
type proofView struct{ p *trie.Partial }

func (v proofView) get(key string) ([]byte, error) {
	val, ok, err := v.p.Get([]byte(key))
	if err != nil {
		return nil, fmt.Errorf("%w: read of %q: %v", ErrBadProof, key, err)
	}
	if !ok {
		return nil, nil
	}
	if val == nil {
		val = []byte{}
	}
	return val, nil
}

func (v proofView) scan(prefix, from string, fn func(key string, val []byte) (bool, error)) error {
	var ferr error
	err := v.p.Iterate(scanRange(prefix, from), func(k, val []byte) bool {
		var more bool
		more, ferr = fn(string(k), val)
		return ferr == nil && more
	})
	if ferr != nil {
		return ferr
	}
	if err != nil {
		if errors.Is(err, trie.ErrIncomplete) {
			return fmt.Errorf("%w: scan of %q: %v", ErrBadProof, prefix, err)
		}
		return err
	}
	return nil
}
