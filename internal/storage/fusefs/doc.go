// Package fusefs mounts a store (internal/storage/catalog) as a FUSE file
// system with go-fuse's fs API.
//
// Reads stream one segment at a time through a small cache of decoded
// segments (plus a read-ahead of the next one), so memory is bounded by a
// few segments whatever the file size. Writes go to a spool file in a local
// cache directory and are uploaded with Store.Put when the file is
// flushed (close), fsynced or released: fsync returns only after the new
// catalog root is committed, so a write is durable once fsync returns, and
// another reader of the store never sees a half-written file (the catalog
// names a file only after all its segments are stored).
//
// Errors map to errno: a full backend is ENOSPC, a missing name ENOENT,
// unreachable or lost data EIO.
package fusefs
