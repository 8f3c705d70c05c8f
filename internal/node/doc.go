// Package node is the node agent: a process with no listening socket that
// registers the machine on the ledger, watches it for contracts addressed to
// this node, turns them into running workloads, keeps them running, and
// reports what it did in a signed, hash-chained event log whose head the
// ledger holds.
//
// The agent only dials out (to the ledger's RPC and to image registries);
// nothing can push work to it or run a command in it. Desired state is what
// the ledger says; observed state is what the workload managers see; the
// reconciler closes the gap, level-triggered, forever.
package node
