package network

import (
	"net/netip"
	"testing"
)

// Golden values: every node must derive the same addresses, in every
// version, so a change here is a format change (docs/formats/network.md).
func TestAddressing(t *testing.T) {
	t.Parallel()
	p, err := Prefix("zerogrid-test", 7, "net")
	if err != nil {
		t.Fatal(err)
	}
	q, _ := Prefix("zerogrid-test", 8, "net")
	r, _ := Prefix("zerogrid-test", 7, "other")
	if p == q || p == r || p.Bits() != 48 || p.Addr().As16()[0] != 0xfd {
		t.Fatalf("prefixes %s %s %s", p, q, r)
	}
	sub, err := NodeSubnet(p, 0x1234)
	if err != nil {
		t.Fatal(err)
	}
	if !p.Contains(sub.Addr()) || sub.Bits() != 64 || sub.Addr().As16()[6] != 0x12 || sub.Addr().As16()[7] != 0x34 {
		t.Fatalf("subnet %s of %s", sub, p)
	}
	a, err := MemberAddr(sub, 3, "web")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := MemberAddr(sub, 3, "db")
	c, _ := MemberAddr(sub, 4, "web")
	if a == b || a == c || !sub.Contains(a) {
		t.Fatalf("members %s %s %s in %s", a, b, c, sub)
	}
	const wantPrefix, wantAddr = "fd46:2d93:c78c::/48", "fd46:2d93:c78c:1234:9685:cd45:43ad:7fed"
	if p.String() != wantPrefix || a.String() != wantAddr {
		t.Fatalf("golden: prefix %s addr %s, want %s and %s", p, a, wantPrefix, wantAddr)
	}
	id, err := ID("zerogrid-test", 7, "net")
	if err != nil {
		t.Fatal(err)
	}
	other, _ := ID("zerogrid-test", 8, "net")
	const wantID = "168e58a0470382d014e3481ff04655ed"
	if id != wantID || other == id {
		t.Fatalf("golden: id %s (other owner's %s), want %s", id, other, wantID)
	}
	for _, bad := range []uint64{0, MaxNodeID + 1} {
		if _, err := NodeSubnet(p, bad); err == nil {
			t.Errorf("node %d got a subnet", bad)
		}
	}
	if _, err := NodeSubnet(netip.MustParsePrefix("10.0.0.0/8"), 1); err == nil {
		t.Error("IPv4 prefix accepted")
	}
	if _, err := MemberAddr(p, 1, "x"); err == nil {
		t.Error("a /48 accepted as a subnet")
	}
}

// collidingChain and collidingNets are two owners' networks whose /48s are
// equal: found by a birthday search over 2^22 names of twin 7 (40 bits
// collide after about 2^20 tries). The tests that show a node isolates
// networks by membership, not by prefix, use them.
const collidingChain = "test-chain"

var collidingNets = [2]struct {
	twin uint64
	name string
}{{7, "lan1w3vo"}, {8, "net3xu0"}}

func TestCollidingFixture(t *testing.T) {
	t.Parallel()
	a, _ := Prefix(collidingChain, collidingNets[0].twin, collidingNets[0].name)
	b, _ := Prefix(collidingChain, collidingNets[1].twin, collidingNets[1].name)
	ida, _ := ID(collidingChain, collidingNets[0].twin, collidingNets[0].name)
	idb, _ := ID(collidingChain, collidingNets[1].twin, collidingNets[1].name)
	if a != b || ida == idb {
		t.Fatalf("prefixes %s and %s, ids %s and %s: want equal prefixes, distinct ids", a, b, ida, idb)
	}
}
