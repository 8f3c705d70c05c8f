// Package zdb is zerogrid's storage backend server (`zgridd zdb`): an
// append-only key-value store with namespaces that speaks the Redis
// protocol with 0-db's command set, so 0-db clients and redis-cli work
// with it.
//
// A Store is a directory with one subdirectory per namespace. Each
// namespace appends records (header, key, value, CRC32C) to data files
// that rotate at a size limit, and keeps an in-memory index of its live
// keys. The index is saved to an index file from time to time, but it is
// only a cache: the data files alone are the truth, and the index is
// rebuilt from them when the index file is missing, damaged or stale.
// After a crash, a partial record at the end of the newest data file (a
// torn tail) is cut off and logged; a damaged record anywhere else is
// logged and skipped, and never served. Compaction rewrites data files
// without their dead records, one file at a time, with an atomic rename.
//
// Server puts the network in front of a Store: redcon parses RESP, a
// framing guard bounds what a request may announce, each connection hands
// redcon one request at a time and charges what it buffers to its own and
// the server's budget (conn.go), and a session per connection holds its
// namespace and authentication.
//
// The formats are specified in docs/formats/zdb.md.
package zdb
