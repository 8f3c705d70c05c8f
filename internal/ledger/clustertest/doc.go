// Package clustertest runs the ledger as a real multi-validator network:
// separate zgridd processes, each a CometBFT validator with the zerogrid
// application, talking over real sockets. It holds tests only.
//
// TestFourValidatorsSurviveOneDown builds cmd/zgridd, writes a four-validator
// testnet with `zgridd chain testnet`, and checks that the network keeps
// committing with one validator killed, and that the validator, restarted on
// its home, catches up to the same application state.
//
// # Network modes
//
// Run as root on Linux with iproute2, the test gives each validator its own
// network namespace with its own IP, joined by a bridge inside one more
// namespace; the test process reaches the validators through a veth from
// the initial namespace into that bridge. Everything is named after the test
// process id and removed when the test ends, also on failure.
//
// Otherwise (not root, no `ip`, or namespaces cannot be created) the four
// validators listen on 127.0.0.1 with distinct ports. This is still four
// processes on a real p2p network, so the test runs rather than skips; its
// log says which mode ran.
//
// Environment:
//
//	ZG_CLUSTER_LOOPBACK=1   use loopback mode even where namespaces work
package clustertest
