package overlay

import (
	"encoding/binary"
	"net/netip"
	"sync/atomic"

	"golang.zx2c4.com/wireguard/tun"
)

// gate is the overlay's TUN device as WireGuard sees it: it passes every
// packet, except that traffic with a blocked peer (one without a
// post-quantum key past the grace period, see Config.PQGrace) is dropped
// in both directions unless it is the key exchange itself: UDP between
// this node's overlay address and the peer's, port ControlPort on both
// sides. With no peer blocked a batch costs one atomic load.
type gate struct {
	tun.Device
	self    netip.Addr
	blocked atomic.Pointer[blockSet] // nil: no peer is blocked
}

// blockSet is an immutable set of blocked peers.
type blockSet struct {
	peers []blockedPeer
}

type blockedPeer struct {
	addr     netip.Addr     // the peer's overlay address
	prefixes []netip.Prefix // its address /128 and its networks
}

// set replaces the blocked peers; nil or empty unblocks all.
func (g *gate) set(peers []blockedPeer) {
	if len(peers) == 0 {
		g.blocked.Store(nil)
		return
	}
	g.blocked.Store(&blockSet{peers: peers})
}

// Read is what the kernel sends into the overlay: packets to a blocked
// peer are dropped by giving them size 0, which WireGuard skips.
func (g *gate) Read(bufs [][]byte, sizes []int, offset int) (int, error) {
	n, err := g.Device.Read(bufs, sizes, offset)
	b := g.blocked.Load()
	if b == nil {
		return n, err
	}
	for i := range n {
		if b.drop(bufs[i][offset:offset+sizes[i]], g.self, true) {
			sizes[i] = 0
		}
	}
	return n, err
}

// Write is what WireGuard delivers to the kernel: packets from a blocked
// peer are left out.
func (g *gate) Write(bufs [][]byte, offset int) (int, error) {
	b := g.blocked.Load()
	if b == nil {
		return g.Device.Write(bufs, offset)
	}
	var kept [][]byte
	for i, p := range bufs {
		if !b.drop(p[offset:], g.self, false) {
			if kept != nil {
				kept = append(kept, p)
			}
			continue
		}
		if kept == nil {
			kept = append(make([][]byte, 0, len(bufs)), bufs[:i]...)
		}
	}
	if kept == nil {
		return g.Device.Write(bufs, offset)
	}
	if len(kept) > 0 {
		if _, err := g.Device.Write(kept, offset); err != nil {
			return 0, err
		}
	}
	return len(bufs), nil
}

// drop reports whether packet p (outbound: from this node, else to it)
// belongs to a blocked peer and is not the key exchange.
func (b *blockSet) drop(p []byte, self netip.Addr, outbound bool) bool {
	if len(p) < 40 || p[0]>>4 != 6 {
		return false // not IPv6: no peer's allowed IPs cover it
	}
	src, dst := netip.AddrFrom16([16]byte(p[8:24])), netip.AddrFrom16([16]byte(p[24:40]))
	remote, local := dst, src
	if !outbound {
		remote, local = src, dst
	}
	for _, bp := range b.peers {
		for _, pre := range bp.prefixes {
			if pre.Contains(remote) {
				return !(remote == bp.addr && local == self && isControl(p))
			}
		}
	}
	return false
}

// isControl reports whether an IPv6 packet is UDP from port ControlPort to
// port ControlPort with no extension headers: a key-exchange datagram.
func isControl(p []byte) bool {
	return len(p) >= 48 && p[6] == 17 &&
		binary.BigEndian.Uint16(p[40:]) == ControlPort && binary.BigEndian.Uint16(p[42:]) == ControlPort
}
