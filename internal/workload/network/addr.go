package network

import (
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"net/netip"

	"github.com/zerogrid/zerogrid/internal/wire"
)

// MaxNodeID is the largest node id that can hold a /64 of a network: the
// 16 bits between a network's /48 and a node's /64 are the node id.
const MaxNodeID = 0xffff

// GatewayAddr is the node's link-local address on every container link:
// containers route their network's /48 through it.
var GatewayAddr = netip.MustParseAddr("fe80::1")

type prefixInput struct {
	Chain string `cbor:"chain"`
	Twin  uint64 `cbor:"twin"`
	Name  string `cbor:"name"`
}

type memberInput struct {
	Contract uint64 `cbor:"contract"`
	Workload string `cbor:"workload"`
}

// Prefix returns the ULA /48 of the network called name of twin on chain:
// fd00::/8 and 40 bits of a digest of the three, so each owner's network
// of each name has its own prefix (RFC 4193's random global id, derived
// instead of drawn so every node computes the same one).
func Prefix(chain string, twin uint64, name string) (netip.Prefix, error) {
	d, err := wire.Digest("network-prefix", 1, prefixInput{chain, twin, name})
	if err != nil {
		return netip.Prefix{}, err
	}
	var b [16]byte
	b[0] = 0xfd
	copy(b[1:6], d[:5])
	return netip.PrefixFrom(netip.AddrFrom16(b), 48), nil
}

// ID returns the network called name of twin on chain as the node's filter
// names it: 32 hex digits (128 bits) of a digest of the three. Unlike the
// 40 bits of its prefix, nobody can make another network's ID equal to it,
// so the filter keys membership on it (docs/formats/network.md).
func ID(chain string, twin uint64, name string) (string, error) {
	d, err := wire.Digest("network-id", 1, prefixInput{chain, twin, name})
	if err != nil {
		return "", err
	}
	return hex.EncodeToString(d[:16]), nil
}

// NodeSubnet returns node's /64 in the network: the node id is the 16-bit
// subnet id, so two nodes never share one.
func NodeSubnet(network netip.Prefix, node uint64) (netip.Prefix, error) {
	if network.Bits() != 48 || !network.Addr().Is6() {
		return netip.Prefix{}, fmt.Errorf("network prefix %s is not an IPv6 /48", network)
	}
	if node == 0 || node > MaxNodeID {
		return netip.Prefix{}, fmt.Errorf("node %d cannot join a network: node ids 1..%d can", node, MaxNodeID)
	}
	b := network.Masked().Addr().As16()
	binary.BigEndian.PutUint16(b[6:8], uint16(node))
	return netip.PrefixFrom(netip.AddrFrom16(b), 64), nil
}

// MemberAddr returns the address of workload of contract in the node's
// subnet: the interface id is 64 bits of a digest of the two.
func MemberAddr(subnet netip.Prefix, contract uint64, workload string) (netip.Addr, error) {
	if subnet.Bits() != 64 || !subnet.Addr().Is6() {
		return netip.Addr{}, fmt.Errorf("subnet %s is not an IPv6 /64", subnet)
	}
	d, err := wire.Digest("network-member", 1, memberInput{contract, workload})
	if err != nil {
		return netip.Addr{}, err
	}
	b := subnet.Masked().Addr().As16()
	copy(b[8:], d[:8])
	if binary.BigEndian.Uint64(b[8:]) <= 1 { // ::0 is the subnet-router anycast address; keep ::1 free too
		b[15] |= 2
	}
	return netip.AddrFrom16(b), nil
}
