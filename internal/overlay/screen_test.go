package overlay

import (
	"bytes"
	"errors"
	"net/netip"
	"slices"
	"strings"
	"testing"

	"github.com/zerogrid/zerogrid/internal/identity"
)

func testPeer(t testing.TB, seed byte, nets ...string) Peer {
	t.Helper()
	id, err := identity.NewPrivateKey(bytes.Repeat([]byte{seed}, 32))
	if err != nil {
		t.Fatal(err)
	}
	_, pub, err := DeriveKey(id)
	if err != nil {
		t.Fatal(err)
	}
	p := Peer{Identity: id.Public(), Key: pub, Endpoint: netip.MustParseAddrPort("192.0.2.1:51820")}
	for _, n := range nets {
		p.Networks = append(p.Networks, netip.MustParsePrefix(n))
	}
	return p
}

// Overlapping allowed IPs are refused explicitly (WireGuard would move
// the addresses to whichever peer came last), and only the peers in the
// overlap are left out.
func TestScreenPeers(t *testing.T) {
	t.Parallel()
	prefix, err := Prefix("zerogrid-test")
	if err != nil {
		t.Fatal(err)
	}
	self := testPeer(t, 1)
	selfAddr, _ := Addr(prefix, self.Key)
	a := testPeer(t, 2, "fd11:2233:4455:1::/64")
	b := testPeer(t, 3, "fd11:2233:4455:2::/64")
	aAddr, _ := Addr(prefix, a.Key)

	check := func(name string, peers []Peer, wantKeys []Key, wantErr string) {
		t.Helper()
		got, err := screenPeers(prefix, self.Key, selfAddr, peers)
		if wantErr == "" && err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if wantErr != "" && (!errors.Is(err, ErrCollision) || !strings.Contains(err.Error(), wantErr)) {
			t.Fatalf("%s: error %v, want ErrCollision mentioning %q", name, err, wantErr)
		}
		if len(got) != len(wantKeys) {
			t.Fatalf("%s: kept %d peers, want %d", name, len(got), len(wantKeys))
		}
		for _, k := range wantKeys {
			if _, ok := got[k]; !ok {
				t.Fatalf("%s: peer %s left out", name, k)
			}
		}
	}
	check("clean, self ignored", []Peer{self, a, b}, []Key{a.Key, b.Key}, "")
	check("same entry twice", []Peer{a, a, b}, []Key{a.Key, b.Key}, "")

	c := testPeer(t, 4, aAddr.String()+"/128") // claims a's address
	check("claims a peer's address", []Peer{a, b, c}, []Key{a.Key, b.Key}, "outside the overlay")
	d := testPeer(t, 5, "fd11:2233:4455:1::/64") // same /64 as a
	check("same network /64", []Peer{a, b, d}, []Key{b.Key}, "overlaps")
	e := testPeer(t, 6, "fd11:2233:4455::/56") // covers a's and b's /64s
	check("covering prefix", []Peer{a, b, e}, nil, "overlaps")
	f := testPeer(t, 7, selfAddr.String()+"/128")
	check("claims this node's address", []Peer{a, f}, []Key{a.Key}, "outside the overlay")
	g := testPeer(t, 8, "::/0")
	check("everything", []Peer{a, g}, []Key{a.Key}, "not an IPv6 prefix")
	h := testPeer(t, 9, "10.0.0.0/8")
	check("IPv4", []Peer{a, h}, []Key{a.Key}, "not an IPv6 prefix")
	i := testPeer(t, 10, netip.PrefixFrom(aAddr, 64).Masked().String()) // inside the overlay /48
	check("inside the overlay prefix", []Peer{a, i}, []Key{a.Key}, "outside the overlay")
	a2 := a
	a2.Endpoint = netip.MustParseAddrPort("192.0.2.9:1")
	check("one key, two records", []Peer{a, a2, b}, []Key{b.Key}, "listed twice")
}

// FuzzScreenPeers: whatever networks the ledger lists for peers, screening
// never panics and what it keeps has no two overlapping allowed IPs and
// nothing inside the overlay's /48 but derived addresses.
func FuzzScreenPeers(f *testing.F) {
	f.Add([]byte{0xfd, 0x11, 0x22, 0x33, 0x44, 0x55, 0, 1, 64, 0xfd, 0x11, 0x22, 0x33, 0x44, 0x55, 0, 1, 56})
	f.Add(make([]byte, 34))
	prefix, err := Prefix("zerogrid-test")
	if err != nil {
		f.Fatal(err)
	}
	var peers []Peer
	for i := range 4 {
		peers = append(peers, testPeer(f, byte(20+i)))
	}
	self := testPeer(f, 1)
	selfAddr, _ := Addr(prefix, self.Key)
	f.Fuzz(func(t *testing.T, b []byte) {
		ps := make([]Peer, len(peers))
		copy(ps, peers)
		// Each 18 bytes: peer index, 16 address bytes, prefix length.
		for i := 0; i+18 <= len(b) && i < 18*16; i += 18 {
			j := int(b[i]) % len(ps)
			a := netip.AddrFrom16([16]byte(b[i+1 : i+17]))
			p, err := a.Prefix(int(b[i+17]) % 129)
			if err != nil {
				continue
			}
			ps[j].Networks = append(slices.Clone(ps[j].Networks), p)
		}
		got, _ := screenPeers(prefix, self.Key, selfAddr, append(ps, self))
		var claims []netip.Prefix
		owner := map[netip.Prefix]Key{}
		for k, p := range got {
			a, _ := Addr(prefix, k)
			mine := []netip.Prefix{netip.PrefixFrom(a, 128)}
			for _, n := range p.Networks {
				if n.Overlaps(prefix) {
					t.Fatalf("kept a network %s inside the overlay prefix", n)
				}
				mine = append(mine, n.Masked())
			}
			for _, m := range mine {
				if m.Overlaps(netip.PrefixFrom(selfAddr, 128)) {
					t.Fatalf("kept %s over this node's address", m)
				}
				for _, c := range claims {
					if c.Overlaps(m) && owner[c] != k {
						t.Fatalf("kept overlapping %s and %s of two peers", c, m)
					}
				}
				claims = append(claims, m)
				owner[m] = k
			}
		}
	})
}
