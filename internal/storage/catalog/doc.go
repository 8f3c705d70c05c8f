// Package catalog is the metadata layer of zerogrid's dispersed storage:
// the file tree (name → size, mode, mtime, segment references) and the root
// record that points at it, both encrypted under keys derived from the
// person's mnemonic and stored on the same backends as the data
// (docs/formats/catalog.md).
//
// Invariants:
//   - Nothing derived from the mnemonic is stored or cached: the catalog key
//     and the root MAC key are derived from identity.Root.StorageSecret with
//     HKDF-SHA256 each time a Store is opened.
//   - The catalog is stored as ordinary segments through a second
//     storage.Encoder with more redundancy than the data (k = 2 where the
//     failure domains allow it, and as many parity shards as placement
//     permits).
//   - A root record names the catalog's segments; it is encrypted, then
//     MAC'd, and written to every backend under "root-<seq>". A commit
//     succeeds once a majority of backends hold the new root; only then are
//     old roots, the old catalog and replaced data deleted.
//   - A reader takes the highest sequence number whose MAC verifies; a
//     forged, corrupt or foreign root is ignored, never trusted.
//   - Commits are serialised by a writer lock over a majority of backends
//     (lock.go): the lock holder re-reads the newest root and commits on top
//     of it, so concurrent writers' updates are merged, not lost. GC is the
//     exception: it refuses to run on a store that moved past the root it
//     opened (ErrStale) but does not take the lock.
package catalog
