package network

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"strings"

	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
)

// ErrCommand wraps a failed ip, nft or sysctl step. Retryable.
var ErrCommand = errors.New("network command failed")

// Tools are the paths of the programs the network data path runs.
type Tools struct {
	IP  string // iproute2's ip
	NFT string // nftables' nft
	// Netns is the named namespace the node's side lives in; empty: the
	// caller's own (as in production, where the agent's namespace is the
	// node's).
	Netns string
}

// LookTools finds ip and nft on PATH (and in /usr/sbin, /sbin). A missing
// one is a *workload.UnavailableError naming its Debian package.
func LookTools() (Tools, error) {
	find := func(name, pkg string) (string, error) {
		if p, err := exec.LookPath(name); err == nil {
			return p, nil
		}
		for _, dir := range []string{"/usr/sbin", "/sbin"} {
			if p := dir + "/" + name; fileExists(p) {
				return p, nil
			}
		}
		return "", &workload.UnavailableError{Type: spec.TypeNetwork, Reason: fmt.Sprintf("%s is not installed (Debian package %s)", name, pkg)}
	}
	ip, err := find("ip", "iproute2")
	if err != nil {
		return Tools{}, err
	}
	nft, err := find("nft", "nftables")
	if err != nil {
		return Tools{}, err
	}
	return Tools{IP: ip, NFT: nft}, nil
}

func fileExists(p string) bool { _, err := os.Stat(p); return err == nil }

// table is the nftables table of the private networks in the node's
// namespace. Forwarded packets to or from a container link are looked up
// by interface name in two verdict maps, which jump to that link's chains.
const table = "zgnet"

const baseRuleset = `table inet zgnet {
	map links_in { type ifname : verdict; }
	map links_out { type ifname : verdict; }
	chain forward {
		type filter hook forward priority filter; policy accept;
		oifname vmap @links_in
		iifname vmap @links_out
	}
}
`

// Link is a container's point-to-point link: HostIf in the node's
// namespace, eth0 in namespace Netns.
type Link struct {
	Netns  string
	HostIf string
}

// Member is what a container is in its network.
type Member struct {
	Net   netip.Prefix // the network's /48
	Addr  netip.Addr   // the container's address
	Ports []uint16     // TCP ports it accepts connections on
}

// Attach gives the container its network address and route, and the
// node's forwarding filter for its link: from other members of the same
// network it accepts ping and its declared TCP ports (and replies to its
// own connections); everything else forwarded to it is dropped, and it can
// send only to its network. Attach is idempotent.
func (t Tools) Attach(ctx context.Context, l Link, m Member) error {
	if !m.Net.Contains(m.Addr) {
		return fmt.Errorf("%w: %s is not in network %s", ErrCommand, m.Addr, m.Net)
	}
	if err := t.ensureBase(ctx); err != nil {
		return err
	}
	host := fmt.Sprintf("addr replace %s/64 dev %s nodad\nroute replace %s/128 dev %s\n", GatewayAddr, l.HostIf, m.Addr, l.HostIf)
	if err := t.ip(ctx, t.Netns, "-6", "-batch", "-", host); err != nil {
		return err
	}
	inner := fmt.Sprintf("addr replace %s/128 dev eth0 nodad\nroute replace %s via %s dev eth0\n", m.Addr, m.Net, GatewayAddr)
	if err := t.ip(ctx, l.Netns, "-6", "-batch", "-", inner); err != nil {
		return err
	}
	return t.nft(ctx, linkRules(l.HostIf, m))
}

// Detach removes the link's filter; the address and routes go with the
// link. A link that has none is fine.
func (t Tools) Detach(ctx context.Context, hostIf string) error {
	var b strings.Builder
	for _, dir := range []string{"in", "out"} {
		fmt.Fprintf(&b, "delete element inet %s links_%s { %q }\n", table, dir, hostIf)
	}
	err := t.nft(ctx, b.String())
	if err != nil && !strings.Contains(err.Error(), "No such file or directory") {
		return err
	}
	for _, dir := range []string{"in", "out"} {
		err := t.nft(ctx, fmt.Sprintf("delete chain inet %s %s-%s\n", table, dir, hostIf))
		if err != nil && !strings.Contains(err.Error(), "No such file or directory") {
			return err
		}
	}
	return nil
}

func linkRules(hostIf string, m Member) string {
	in, out := "in-"+hostIf, "out-"+hostIf
	var b strings.Builder
	for _, c := range []string{in, out} {
		fmt.Fprintf(&b, "add chain inet %s %s\nflush chain inet %s %s\n", table, c, table, c)
	}
	rule := func(chain, r string) { fmt.Fprintf(&b, "add rule inet %s %s %s\n", table, chain, r) }
	rule(in, "ct state established,related accept")
	rule(in, fmt.Sprintf("ip6 saddr != %s drop", m.Net))
	rule(in, "meta l4proto ipv6-icmp accept")
	if len(m.Ports) > 0 {
		ports := make([]string, len(m.Ports))
		for i, p := range m.Ports {
			ports[i] = fmt.Sprint(p)
		}
		rule(in, fmt.Sprintf("tcp dport { %s } ct state new accept", strings.Join(ports, ", ")))
	}
	rule(in, "drop")
	rule(out, fmt.Sprintf("ip6 daddr %s accept", m.Net))
	rule(out, "drop")
	fmt.Fprintf(&b, "add element inet %s links_in { %q : jump %s }\n", table, hostIf, in)
	fmt.Fprintf(&b, "add element inet %s links_out { %q : jump %s }\n", table, hostIf, out)
	return b.String()
}

// ensureBase creates the table once; its rules are not re-added.
func (t Tools) ensureBase(ctx context.Context) error {
	if t.nft(ctx, "list table inet "+table+"\n") == nil {
		return nil
	}
	return t.nft(ctx, baseRuleset)
}

// EnableForwarding turns on IPv6 forwarding in the node's namespace.
func (t Tools) EnableForwarding(ctx context.Context) error {
	if t.Netns != "" {
		return run(ctx, t.IP, []string{"netns", "exec", t.Netns, "sh", "-c", "echo 1 > /proc/sys/net/ipv6/conf/all/forwarding"}, "")
	}
	if err := os.WriteFile("/proc/sys/net/ipv6/conf/all/forwarding", []byte("1\n"), 0o644); err != nil {
		return fmt.Errorf("%w: enable IPv6 forwarding: %v", ErrCommand, err)
	}
	return nil
}

func (t Tools) nft(ctx context.Context, script string) error {
	if t.Netns != "" {
		return run(ctx, t.IP, []string{"netns", "exec", t.Netns, t.NFT, "-f", "-"}, script)
	}
	return run(ctx, t.NFT, []string{"-f", "-"}, script)
}

func (t Tools) ip(ctx context.Context, netns string, args ...string) error {
	stdin := ""
	if n := len(args); n >= 2 && args[n-2] == "-" {
		stdin, args = args[n-1], args[:n-1]
	}
	if netns != "" {
		args = append([]string{"-n", netns}, args...)
	}
	return run(ctx, t.IP, args, stdin)
}

func run(ctx context.Context, bin string, args []string, stdin string) error {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: %s %s: %v: %s", ErrCommand, bin, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
