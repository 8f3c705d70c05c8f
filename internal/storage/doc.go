// Package storage is the data path of zerogrid's dispersed storage: it turns
// a byte stream into segments, and each segment into k+m shards on k+m
// backends, such that any k shards recover the segment and fewer than k
// reveal nothing about its key.
//
// Per segment (MinSegmentSize to MaxSegmentSize of plaintext; 4–16 MiB in
// practice):
//
//  1. compress with S2, unless that saves less than 1/32 (the header says
//     which);
//  2. encrypt with a fresh random 256-bit key in 64 KiB AES-256-GCM frames
//     (STREAM: frame counter and last-frame flag in the nonce; segment id,
//     format version, k, m and lengths in the associated data), so
//     truncation, reordering and frame swapping fail to decrypt;
//  3. cut the sealed stream into k data shards and add m Reed-Solomon parity
//     shards (github.com/klauspost/reedsolomon);
//  4. Shamir-split the key k-of-(k+m) over GF(2^8) (package shamir) and put
//     share i in shard i's header, with a BLAKE3 hash of every 64 KiB block
//     of the shard's data and a hash of the header itself
//     (docs/formats/shard.md);
//  5. put each shard on its own backend, never more than MaxPerDomain(k, m)
//     on one failure domain.
//
// Invariants:
//   - A segment key exists only in memory while a segment is encoded or
//     decoded; at rest it exists only as shares, so k−1 backends (or k−1
//     failure domains' worth of shards) hold no information about it.
//   - A write succeeds only with at least k+1 shards stored, and says which
//     shards failed (Written.Faults) so the caller can queue repair. A failed
//     write removes what it stored.
//   - A read fetches shards in parallel, data shards first, verifies each
//     (block hashes, header hash, and the header digest pinned in the
//     SegmentRef), stops at k verified ones, cancels the rest and reports
//     bad shards (Read.Faults). Nothing in a shard can make it panic.
//   - Memory is bounded by a small number of segments (Config.Parallel,
//     DecoderConfig.Parallel), whatever the stream length.
//
// The metadata layer stores SegmentRefs (encrypted, dispersed); they name
// backends by id, never by address or credentials. Backend is the seam for
// storage locations (mem, dir and zdbbackend); backendtest holds their
// conformance suite.
package storage
