package grid

import (
	"context"
	"crypto/sha256"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"
)

// netnsDir is where `ip netns` keeps named network namespaces.
const netnsDir = "/run/netns"

// hostNet places nodes in network namespaces. Node i (from 1) gets
// namespace "<prefix>n<i>" and a veth pair "<prefix>h<i>" (host end) /
// "<prefix>n<i>" (node end). Every host end carries the gateway address,
// a /32 with a route to its node's address only, and every node end its
// node's address with a route to the gateway only: the /24 exists only on
// these links, nothing is routed or forwarded beyond them.
type hostNet struct {
	prefix string       // "zg" and 4 hex digits of the grid directory's hash
	subnet netip.Prefix // 10.249.X.0/24
}

func newHostNet(absDir string) hostNet {
	sum := sha256.Sum256([]byte(absDir))
	return hostNet{
		prefix: fmt.Sprintf("zg%x", sum[:2]),
		subnet: netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 249, sum[2], 0}), 24),
	}
}

func (h hostNet) gateway() netip.Addr { return h.at(1) }
func (h hostNet) nodeAddr(i int) netip.Addr {
	return h.at(byte(i + 1))
}
func (h hostNet) at(b byte) netip.Addr {
	a := h.subnet.Addr().As4()
	a[3] = b
	return netip.AddrFrom4(a)
}
func (h hostNet) netns(i int) string    { return fmt.Sprintf("%sn%d", h.prefix, i) }
func (h hostNet) hostVeth(i int) string { return fmt.Sprintf("%sh%d", h.prefix, i) }

// The underlay: a bridge in namespace "<prefix>u" that every node joins
// with a second link, "ul0" in its namespace ("<prefix>u<i>" on the
// bridge), addressed in 10.248.X.0/24. The nodes' overlay runs over it;
// nothing else is on it, and it is not routed anywhere.
func (h hostNet) underlayNetns() string     { return h.prefix + "u" }
func (h hostNet) underlayPort(i int) string { return fmt.Sprintf("%su%d", h.prefix, i) }
func (h hostNet) underlayAddr(i int) netip.Addr {
	a := h.subnet.Addr().As4()
	a[1], a[3] = 248, byte(i+1)
	return netip.AddrFrom4(a)
}

// addUnderlay creates the underlay bridge (after removing one left over).
func (h hostNet) addUnderlay(ctx context.Context) error {
	h.removeUnderlay(ctx)
	ns := h.underlayNetns()
	for _, s := range [][]string{
		{"netns", "add", ns},
		{"-n", ns, "link", "add", "br0", "type", "bridge"},
		{"-n", ns, "link", "set", "br0", "up"},
	} {
		if err := ipCmd(ctx, s...); err != nil {
			h.removeUnderlay(ctx)
			return err
		}
	}
	return nil
}

// joinUnderlay links node i's namespace to the bridge.
func (h hostNet) joinUnderlay(ctx context.Context, i int) error {
	ns, port := h.underlayNetns(), h.underlayPort(i)
	for _, s := range [][]string{
		{"-n", ns, "link", "add", port, "type", "veth", "peer", "name", "ul0", "netns", h.netns(i)},
		{"-n", ns, "link", "set", port, "master", "br0", "up"},
		{"-n", h.netns(i), "addr", "add", h.underlayAddr(i).String() + "/24", "dev", "ul0"},
		{"-n", h.netns(i), "link", "set", "ul0", "up"},
	} {
		if err := ipCmd(ctx, s...); err != nil {
			return err
		}
	}
	return nil
}

// removeUnderlay deletes the bridge's namespace (and with it every
// node's link to it).
func (h hostNet) removeUnderlay(ctx context.Context) {
	if _, err := os.Stat(netnsDir + "/" + h.underlayNetns()); err == nil {
		_ = ipCmd(ctx, "netns", "del", h.underlayNetns())
	}
}

// add creates node i's namespace and link, after removing any left from
// an earlier run that did not finish its clean-up.
func (h hostNet) add(ctx context.Context, i int) error {
	h.remove(ctx, i)
	ns, hv, nv := h.netns(i), h.hostVeth(i), h.netns(i)
	gw, addr := h.gateway().String(), h.nodeAddr(i).String()
	steps := [][]string{
		{"netns", "add", ns},
		{"link", "add", hv, "type", "veth", "peer", "name", nv, "netns", ns},
		{"addr", "add", gw, "peer", addr + "/32", "dev", hv},
		{"link", "set", hv, "up"},
		{"-n", ns, "link", "set", "lo", "up"},
		{"-n", ns, "addr", "add", addr, "peer", gw + "/32", "dev", nv},
		{"-n", ns, "link", "set", nv, "up"},
	}
	for _, s := range steps {
		if err := ipCmd(ctx, s...); err != nil {
			h.remove(ctx, i)
			return err
		}
	}
	return nil
}

// remove deletes node i's namespace and link; deleting the namespace
// deletes the veth pair with it. Missing pieces are not an error.
func (h hostNet) remove(ctx context.Context, i int) {
	_ = ipCmd(ctx, "link", "del", h.hostVeth(i))
	if _, err := os.Stat(netnsDir + "/" + h.netns(i)); err == nil {
		_ = ipCmd(ctx, "netns", "del", h.netns(i))
	}
}

func ipCmd(ctx context.Context, args ...string) error {
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}
