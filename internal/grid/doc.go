// Package grid runs a local development grid on one machine: a
// one-validator ledger and a hub in the calling process, a farm, N `zgridd
// node` processes, each in its own network namespace, and a `zgridd
// gateway`. It is what `zgrid up` runs; it needs root and the tools that
// CheckHost lists, and checks for them before it starts anything.
//
// A local grid is for development only: its keys live in DIR/keys,
// encrypted under a generated passphrase that is stored next to them in
// DIR/keys/passphrase (mode 0600), so anyone who can read DIR controls the
// grid's twins. Everything it starts it stops on cancellation; the state
// in DIR (keys, chain, hub, node data) is kept, and the next Run reuses it.
package grid
