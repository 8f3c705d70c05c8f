// Package trie is the ledger's authenticated state: an ordered binary
// Merkle trie over byte-string keys (a crit-bit, or Patricia, trie) whose
// root hash is the app hash, with proofs that a light client checks
// against it.
//
// Keys are read as bit strings in a prefix-free encoding that keeps byte
// order: each byte is sent as a 1 bit followed by its 8 bits, and the end of
// the key as a 0 bit. Every inner node branches on the first bit where the
// keys below it differ (its crit bit) and commits to the bits all of them
// share (its prefix), so a set of keys has exactly one trie and one root,
// whatever order the keys were written in. Both kinds of node hash with
// SHA-256 behind a one-byte tag:
//
//	leaf  = SHA-256(0x00 || u32be(len key) || key || SHA-256(value))
//	inner = SHA-256(0x01 || u32be(crit) || prefix(crit) || left || right)
//	empty tree = SHA-256("")
//
// where prefix(crit) is the key bytes that hold the first crit bits, the
// last one masked to its bits inside the prefix (docs/formats/state.md).
//
// A Tree is immutable: Apply returns a new version that shares every node
// off the written paths with the old one, so older versions stay readable
// (queries answer at the height a light client can verify) at the cost of
// the written paths only.
//
// A Proof is a partial trie: the nodes a set of reads touched, in full, and
// every other subtree folded into its hash and prefix. A verifier rebuilds
// the root from it and then answers the same reads from it: a value, an
// absence, or every key of a range (a range is complete because no folded
// subtree's prefix can hold a key inside it). A read that leaves what the
// proof covers fails with ErrIncomplete rather than guessing.
package trie
