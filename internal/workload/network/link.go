package network

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"regexp"
	"slices"
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
// namespace. Forwarded packets from or to a container link are looked up
// by interface name in two verdict maps, which jump to that link's chains;
// each network has a set of the links of its members here, and the set
// uplinks holds the devices that carry members on other nodes (the
// overlay's).
const table = "zgnet"

// baseRuleset creates the table's shared objects or, on a table made
// before, completes them and replaces the forward chain's rules, in one
// transaction: "add" leaves an existing map, set or chain as it is.
const baseRuleset = `add table inet zgnet
add map inet zgnet links_in { type ifname : verdict; }
add map inet zgnet links_out { type ifname : verdict; }
add set inet zgnet uplinks { type ifname; }
add chain inet zgnet forward { type filter hook forward priority filter; policy accept; }
flush chain inet zgnet forward
add rule inet zgnet forward iifname vmap @links_out
add rule inet zgnet forward oifname vmap @links_in
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
	ID    string       // the network's ID (see ID): whose members' set the link joins
	Addr  netip.Addr   // the container's address
	Ports []uint16     // TCP ports it accepts connections on
}

// Attach gives the container its network address and route, makes its
// link a member of its network's set, and sets the node's forwarding filter
// for the link: it accepts, from the links of the same network's members
// here and from uplinks, ping and its declared TCP ports (and replies to
// its own connections), and it may send only from its own address to its
// network's members. The filter keys membership on the link, never on the
// source address alone: another network whose prefix is the same reaches
// nothing. Attach is idempotent, and takes the link out of any other
// network's set.
func (t Tools) Attach(ctx context.Context, l Link, m Member) error {
	if !m.Net.Contains(m.Addr) {
		return fmt.Errorf("%w: %s is not in network %s", ErrCommand, m.Addr, m.Net)
	}
	if !idRE.MatchString(m.ID) {
		return fmt.Errorf("%w: network ID %q is not 32 hex digits", ErrCommand, m.ID)
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
	sets, err := t.setsHolding(ctx, l.HostIf)
	if err != nil {
		return err
	}
	var b strings.Builder
	var left []string
	for _, set := range sets {
		if set != membersSet(m.ID) {
			fmt.Fprintf(&b, "delete element inet %s %s { %q }\n", table, set, l.HostIf)
			left = append(left, set)
		}
	}
	b.WriteString(linkRules(l.HostIf, m))
	if err := t.nft(ctx, b.String()); err != nil {
		return err
	}
	return t.dropEmptySets(ctx, left)
}

// idRE is the form of a network ID.
var idRE = regexp.MustCompile(`^[0-9a-f]{32}$`)

// membersSet is the set of the links of network id's members.
func membersSet(id string) string { return "members-" + id }

// Detach removes the link's filter and takes it out of its network's set,
// deleting the set when it was the last member; the address and routes go
// with the link. A link that has none is fine.
func (t Tools) Detach(ctx context.Context, hostIf string) error {
	sets, err := t.setsHolding(ctx, hostIf)
	if err != nil {
		return err
	}
	var cmds []string
	for _, dir := range []string{"in", "out"} {
		cmds = append(cmds, fmt.Sprintf("delete element inet %s links_%s { %q }\n", table, dir, hostIf))
	}
	for _, dir := range []string{"in", "out"} {
		cmds = append(cmds, fmt.Sprintf("delete chain inet %s %s-%s\n", table, dir, hostIf))
	}
	for _, set := range sets {
		cmds = append(cmds, fmt.Sprintf("delete element inet %s %s { %q }\n", table, set, hostIf))
	}
	for _, c := range cmds {
		if err := t.nft(ctx, c); err != nil && !strings.Contains(err.Error(), "No such file or directory") {
			return err
		}
	}
	return t.dropEmptySets(ctx, sets)
}

// dropEmptySets deletes those of sets that have no member left.
func (t Tools) dropEmptySets(ctx context.Context, sets []string) error {
	if len(sets) == 0 {
		return nil
	}
	all, err := t.memberSets(ctx)
	if err != nil {
		return err
	}
	for _, set := range sets {
		if elems, ok := all[set]; ok && len(elems) == 0 {
			err := t.nft(ctx, fmt.Sprintf("delete set inet %s %s\n", table, set))
			if err != nil && !strings.Contains(err.Error(), "No such file or directory") {
				return err
			}
		}
	}
	return nil
}

// setsHolding returns the member sets that hold hostIf.
func (t Tools) setsHolding(ctx context.Context, hostIf string) ([]string, error) {
	all, err := t.memberSets(ctx)
	if err != nil {
		return nil, err
	}
	var out []string
	for set, elems := range all {
		if slices.Contains(elems, hostIf) {
			out = append(out, set)
		}
	}
	slices.Sort(out)
	return out, nil
}

// memberSets returns the member sets of the table and their links; none
// when there is no table yet.
func (t Tools) memberSets(ctx context.Context) (map[string][]string, error) {
	args := []string{"-j", "list", "sets", "table", "inet", table}
	out, err := t.nftOutput(ctx, args...)
	if err != nil {
		if strings.Contains(err.Error(), "No such file or directory") {
			return nil, nil
		}
		return nil, err
	}
	return parseMemberSets(out)
}

// parseMemberSets reads nft's JSON listing of sets (libnftables-json(5)):
// the sets named members-*, with their elements that are interface names.
func parseMemberSets(b []byte) (map[string][]string, error) {
	var doc struct {
		Nftables []struct {
			Set *struct {
				Name string            `json:"name"`
				Elem []json.RawMessage `json:"elem"`
			} `json:"set"`
		} `json:"nftables"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%w: nft's list of sets: %v", ErrCommand, err)
	}
	out := map[string][]string{}
	for _, o := range doc.Nftables {
		if o.Set == nil || !strings.HasPrefix(o.Set.Name, "members-") {
			continue
		}
		elems := []string{}
		for _, e := range o.Set.Elem {
			var name string
			if json.Unmarshal(e, &name) == nil {
				elems = append(elems, name)
			}
		}
		out[o.Set.Name] = elems
	}
	return out, nil
}

func linkRules(hostIf string, m Member) string {
	in, out, members := "in-"+hostIf, "out-"+hostIf, membersSet(m.ID)
	var b strings.Builder
	fmt.Fprintf(&b, "add set inet %s %s { type ifname; }\n", table, members)
	for _, c := range []string{in, out} {
		fmt.Fprintf(&b, "add chain inet %s %s\nflush chain inet %s %s\n", table, c, table, c)
	}
	rule := func(chain, r string) { fmt.Fprintf(&b, "add rule inet %s %s %s\n", table, chain, r) }
	// To the container: replies, and from its network's members only.
	rule(in, "meta nfproto != ipv6 drop")
	rule(in, "ct state established,related accept")
	rule(in, fmt.Sprintf("ip6 saddr != %s drop", m.Net))
	rule(in, fmt.Sprintf("iifname != @%s iifname != @uplinks drop", members))
	rule(in, "meta l4proto ipv6-icmp accept")
	if len(m.Ports) > 0 {
		ports := make([]string, len(m.Ports))
		for i, p := range m.Ports {
			ports[i] = fmt.Sprint(p)
		}
		rule(in, fmt.Sprintf("tcp dport { %s } ct state new accept", strings.Join(ports, ", ")))
	}
	rule(in, "drop")
	// From the container: from its own address to its network, through
	// an uplink, or to a member here (whose in- chain then decides).
	rule(out, "meta nfproto != ipv6 drop")
	rule(out, fmt.Sprintf("ip6 saddr != %s drop", m.Addr))
	rule(out, fmt.Sprintf("ip6 daddr != %s drop", m.Net))
	rule(out, "oifname @uplinks accept")
	rule(out, fmt.Sprintf("oifname @%s return", members))
	rule(out, "drop")
	fmt.Fprintf(&b, "add element inet %s %s { %q }\n", table, members, hostIf)
	fmt.Fprintf(&b, "add element inet %s links_in { %q : jump %s }\n", table, hostIf, in)
	fmt.Fprintf(&b, "add element inet %s links_out { %q : jump %s }\n", table, hostIf, out)
	return b.String()
}

// ensureBase creates or completes the table (see baseRuleset) and adds
// uplinks: devices (the overlay's) through which the members of the node's
// networks on other nodes arrive and are reached.
func (t Tools) ensureBase(ctx context.Context, uplinks ...string) error {
	script := baseRuleset
	for _, dev := range uplinks {
		script += fmt.Sprintf("add element inet %s uplinks { %q }\n", table, dev)
	}
	return t.nft(ctx, script)
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
	_, err := t.nftOutput(ctx, "-f", "-", script)
	return err
}

// nftOutput runs nft with args; a last argument after "-" is its stdin.
func (t Tools) nftOutput(ctx context.Context, args ...string) ([]byte, error) {
	stdin := ""
	if n := len(args); n >= 2 && args[n-2] == "-" {
		stdin, args = args[n-1], args[:n-1]
	}
	if t.Netns != "" {
		return output(ctx, t.IP, append([]string{"netns", "exec", t.Netns, t.NFT}, args...), stdin)
	}
	return output(ctx, t.NFT, args, stdin)
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
	_, err := output(ctx, bin, args, stdin)
	return err
}

// output runs bin and returns its standard output; a failure's error
// carries its standard error.
func output(ctx context.Context, bin string, args []string, stdin string) ([]byte, error) {
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = strings.NewReader(stdin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		return nil, fmt.Errorf("%w: %s %s: %v: %s", ErrCommand, bin, strings.Join(args, " "), err, bytes.TrimSpace(append(out, stderr.Bytes()...)))
	}
	return out, nil
}
