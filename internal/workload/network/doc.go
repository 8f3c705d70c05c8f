// Package network runs "network" workloads: private IPv6 networks whose
// members are the containers of one owner's deployments that declare a
// network of the same name, on whichever nodes.
//
// Addressing (docs/formats/network.md): a network's ULA /48 is derived
// from the chain, the owner and the name; a node's /64 in it is the /48
// plus its node id; a container's address is the node's /64 plus 64 bits
// of a digest of its contract and workload name. Every node computes the
// same addresses from the ledger alone.
//
// Data path on a node: each container has a point-to-point link to the
// node (made by the container manager); Attach gives it its address and a
// route for its network's /48 through the node, and an nftables filter in
// the node's namespace that drops forwarded packets between different
// networks and, inside a network, admits only ping and the container's
// declared TCP ports. Packets for members on other nodes leave through the
// node's overlay device, whose peers' allowed addresses carry their /64s.
package network
