// Package chain runs a CometBFT v1 validator inside the current process,
// around an ABCI 2.0 application, and writes validator homes for local
// multi-validator testnets.
//
// A home is an ordinary CometBFT home directory (config/config.toml,
// config/genesis.json, config/node_key.json, config/priv_validator_key.json,
// data/). Init creates whatever is missing and never rewrites an existing
// file; Start reads config.toml, applies the few overrides carried by Config,
// and runs the node until Stop.
//
// Invariants the package keeps:
//   - Databases use goleveldb, a pure Go backend, so no cgo is needed.
//   - The node serves its JSON-RPC and websocket endpoints from a listener
//     this package owns, so RPC ports may be 0 and Node.RPCAddr reports the
//     port actually bound.
//   - Stop closes every database the node opened, including the tx index
//     that CometBFT itself leaves open, so the same home can be started
//     again in the same process. A closed database reads as empty, because
//     some CometBFT goroutines outlive Stop and would otherwise panic.
//   - Prometheus metrics are always off: CometBFT registers them with the
//     global Prometheus registry, which would panic on a second node in one
//     process.
package chain
