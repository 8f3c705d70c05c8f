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
// route for its network's /48 through the node, makes the link a member of
// its network's set, and sets an nftables filter in the node's namespace
// that admits a forwarded packet only between members of one network
// (by link, never by source address alone) and, inside a network, only
// ping and the container's declared TCP ports. Packets for members on
// other nodes leave through the node's overlay device, whose peers'
// allowed addresses carry their /64s.
//
// A network's /48 has 40 bits chosen by a digest of its owner and name, so
// an owner can find a name whose prefix is another's. The manager keeps
// one network per prefix on a node: a second one is refused (Admit, before
// the node accepts its contract, and Provision).
package network
