// Package zdb runs "zdb" workloads: each is a 0-db namespace, on the
// node's own disks, that one node-wide `zgridd zdb` server process serves
// on the node's overlay address (never in the agent's process).
//
// The manager starts that server when the node has a zdb workload, adopts
// it after an agent restart, starts it again when it exits, and stops it
// when the last zdb workload is gone. It talks to it as admin (a random
// password kept 0600 in the node's data directory) to create a namespace
// per workload, named NamespaceName(contract, workload), with the owner's
// password (a sealed secret of the contract) and a limit on its bytes on
// disk (the workload's disk reservation). Deprovision deletes the
// namespace and its data.
//
// Reachability: the server listens only on the node's overlay address, so
// neither a public address nor the host's loopback reaches it, and Guard
// drops packets for its port that arrive on any link but the overlay's
// and the node's own (a container on this node cannot route to it; a
// container's own node forwards it nothing beyond its private network).
// Who reaches the port still needs the namespace's password: namespaces
// are private, never public.
package zdb
