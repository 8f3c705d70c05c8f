// Package hub is zerogrid's image hub: an OCI distribution registry served
// over HTTP, with everything it stores kept on disk, and the client side that
// pushes images to it, pins a tag to the digest of the manifest it names,
// and pulls images by digest.
//
// The registry protocol comes from go-containerregistry's pkg/registry,
// which serves blob reads through a pluggable BlobHandler. That package keeps
// manifests and in-progress uploads in memory, without limits, so the hub
// answers those routes itself (manifests, tags, catalog, uploads) and hands
// the rest (the version check and blob reads) to pkg/registry with a
// disk-backed BlobHandler.
//
// Invariants, which docs/formats/hub.md states as the on-disk format:
//   - A blob is stored under its digest only after its bytes were hashed
//     while they streamed in and matched; it is written to a temporary file,
//     fsynced and renamed, so a crash never leaves a partial blob under a
//     digest name.
//   - A manifest is accepted only if every blob and child manifest it
//     references is already stored, with the size it claims, so a stored
//     manifest can always be pulled in full.
//   - Nothing is ever deleted or overwritten under a digest name. Tags are
//     mutable pointers; pullers pin digests.
//
// Pushing is open to whoever reaches the listener. Pullers verify what they
// get against the digest they asked for, so a hostile pusher can add images
// but cannot change what a digest names.
package hub
