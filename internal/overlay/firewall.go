package overlay

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os/exec"
	"regexp"
	"slices"
	"strings"
)

// FirewallTable is the nftables table a Firewall owns in its namespace.
const FirewallTable = "zgfw"

// Firewall is a workload's default-deny inbound filter: in network
// namespace Netns, packets delivered to the namespace (the input hook) are
// dropped unless they belong to a connection the namespace already has
// (established or related, which covers replies to its own connections),
// come from loopback, are the ICMPv6 that IPv6 needs (neighbour discovery,
// errors such as packet-too-big) or a ping, or go to a declared TCP or UDP
// port. Outbound traffic is not filtered. The rules live in their own
// table (FirewallTable, family inet), which Apply replaces atomically and
// Remove deletes; nothing else in the namespace is touched.
type Firewall struct {
	Netns string // a named namespace (ip netns); "" for the caller's
	// Iface, if set, limits the filter to packets arriving on that
	// interface (e.g. the overlay TUN); others are accepted.
	Iface string
	NFT   string // path of nft; default found on PATH
	IP    string // path of ip, to enter Netns; default found on PATH
}

// Ports are the ports a workload declares open.
type Ports struct {
	TCP []uint16
	UDP []uint16
}

var ifaceName = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,15}$`)

// Rules returns the ruleset Apply loads: a transaction that creates the
// table, deletes it and recreates it, so an earlier version is replaced in
// one step without a moment of open or closed ports.
func (f Firewall) Rules(p Ports) (string, error) {
	if f.Iface != "" && !ifaceName.MatchString(f.Iface) {
		return "", fmt.Errorf("overlay: firewall: bad interface name %q", f.Iface)
	}
	if slices.Contains(p.TCP, 0) || slices.Contains(p.UDP, 0) {
		return "", errors.New("overlay: firewall: port 0 is not a port; declare 1-65535")
	}
	var b strings.Builder
	fmt.Fprintf(&b, "table inet %s {}\ndelete table inet %s\n", FirewallTable, FirewallTable)
	fmt.Fprintf(&b, "table inet %s {\n\tchain input {\n\t\ttype filter hook input priority filter; policy drop;\n", FirewallTable)
	if f.Iface != "" {
		fmt.Fprintf(&b, "\t\tiifname != %q accept\n", f.Iface)
	}
	b.WriteString("\t\tct state established,related accept\n")
	b.WriteString("\t\tct state invalid drop\n")
	b.WriteString("\t\tiif lo accept\n")
	b.WriteString("\t\ticmpv6 type { destination-unreachable, packet-too-big, time-exceeded, parameter-problem, echo-request, nd-router-advert, nd-neighbor-solicit, nd-neighbor-advert } accept\n")
	b.WriteString("\t\ticmp type { destination-unreachable, time-exceeded, parameter-problem, echo-request } accept\n")
	for _, x := range []struct {
		proto string
		ports []uint16
	}{{"tcp", p.TCP}, {"udp", p.UDP}} {
		if len(x.ports) == 0 {
			continue
		}
		ps := slices.Clone(x.ports)
		slices.Sort(ps)
		ps = slices.Compact(ps)
		s := make([]string, len(ps))
		for i, v := range ps {
			s[i] = fmt.Sprint(v)
		}
		fmt.Fprintf(&b, "\t\t%s dport { %s } accept\n", x.proto, strings.Join(s, ", "))
	}
	b.WriteString("\t}\n}\n")
	return b.String(), nil
}

// Apply installs (or replaces) the filter with ports open.
func (f Firewall) Apply(ctx context.Context, p Ports) error {
	rules, err := f.Rules(p)
	if err != nil {
		return err
	}
	return f.nft(ctx, rules)
}

// Remove deletes the filter, opening the namespace again. Removing a
// filter that is not there is fine.
func (f Firewall) Remove(ctx context.Context) error {
	return f.nft(ctx, fmt.Sprintf("table inet %s {}\ndelete table inet %s\n", FirewallTable, FirewallTable))
}

func (f Firewall) nft(ctx context.Context, script string) error {
	nft, err := look(f.NFT, "nft", "nftables")
	if err != nil {
		return err
	}
	args := []string{nft, "-f", "-"}
	if f.Netns != "" {
		ip, err := look(f.IP, "ip", "iproute2")
		if err != nil {
			return err
		}
		args = append([]string{ip, "netns", "exec", f.Netns}, args...)
	}
	cmd := exec.CommandContext(ctx, args[0], args[1:]...)
	cmd.Stdin = strings.NewReader(script)
	out, err := cmd.CombinedOutput()
	if err != nil {
		where := "this namespace"
		if f.Netns != "" {
			where = "namespace " + f.Netns
		}
		return fmt.Errorf("overlay: firewall in %s: nft: %v: %s", where, err, bytes.TrimSpace(out))
	}
	return nil
}

func look(path, name, pkg string) (string, error) {
	if path != "" {
		return path, nil
	}
	for _, p := range []string{name, "/usr/sbin/" + name, "/sbin/" + name} {
		if q, err := exec.LookPath(p); err == nil {
			return q, nil
		}
	}
	return "", fmt.Errorf("overlay: %s not found: install %s", name, pkg)
}
