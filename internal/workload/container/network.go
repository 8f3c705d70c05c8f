package container

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/zerogrid/zerogrid/internal/workload/idmap"
)

// netnsDir is where `ip netns` keeps named network namespaces.
const netnsDir = "/run/netns"

// network gives each container a point-to-point link to the node: slot
// i of the subnet is the /30 at subnet+4i, whose .1 is the host end (veth
// "zg<instance>-<i>" in the agent's namespace) and .2 the container's eth0
// in network namespace "zg-<instance>-<i>". That namespace is owned by the
// slot's user namespace (pinned at <run>/userns/<i>), which the container
// runs in. There is no default route in the container: it reaches only the
// host end of its own link, and the node reaches it at .2. Links are made
// with iproute2's ip.
type network struct {
	subnet   netip.Prefix // IPv4, at most /30 bits long
	instance string       // 6 hex digits unique to the node's data dir
	ip       string       // path of ip
	runDir   string       // the run directory (tmpfs)
}

func (n network) slots() int { return 1 << (32 - n.subnet.Bits()) / 4 }

func (n network) addr(slot, host int) netip.Addr {
	base := n.subnet.Masked().Addr().As4()
	v := binary.BigEndian.Uint32(base[:]) + uint32(4*slot+host)
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], v)
	return netip.AddrFrom4(b)
}

// hostAddr and ctrAddr are the two ends of slot's link.
func (n network) hostAddr(slot int) netip.Addr { return n.addr(slot, 1) }
func (n network) ctrAddr(slot int) netip.Addr  { return n.addr(slot, 2) }

func (n network) netns(slot int) string { return "zg-" + n.instance + "-" + strconv.Itoa(slot) }
func (n network) veth(slot int) string  { return "zg" + n.instance + "-" + strconv.Itoa(slot) }

// netnsPath is the network namespace file runc joins.
func (n network) netnsPath(slot int) string { return filepath.Join(netnsDir, n.netns(slot)) }

// usernsPath is the user namespace file runc joins.
func (n network) usernsPath(slot int) string {
	return filepath.Join(n.runDir, "userns", strconv.Itoa(slot))
}

// ensure creates whatever of slot's namespaces and link is missing and
// (re)sets the addresses; it is idempotent. The user namespace maps the
// container's ids to ids; a pair of namespaces whose network namespace is
// not owned by the user namespace (half made before a crash, or made by
// an older agent) is made again.
func (n network) ensure(ctx context.Context, slot int, ids idmap.Range) error {
	ns, veth := n.netns(slot), n.veth(slot)
	ok, err := paired(n.netnsPath(slot), n.usernsPath(slot))
	if err != nil {
		return err
	}
	if !ok {
		if err := n.remove(ctx, slot); err != nil {
			return err
		}
		if err := makeNamespaces(ctx, n.ip, ns, n.usernsPath(slot), ids); err != nil {
			return err
		}
	}
	var host strings.Builder
	if n.run(ctx, "", "link", "show", "dev", veth) != nil {
		fmt.Fprintf(&host, "link add %s type veth peer name eth0 netns %s\n", veth, ns)
	}
	fmt.Fprintf(&host, "addr replace %s/30 dev %s\nlink set %s up\n", n.hostAddr(slot), veth, veth)
	if err := n.batch(ctx, "", host.String()); err != nil {
		return err
	}
	inner := fmt.Sprintf("addr replace %s/30 dev eth0\nlink set eth0 up\nlink set lo up\n", n.ctrAddr(slot))
	return n.batch(ctx, ns, inner)
}

// remove deletes slot's link and namespaces; missing ones are fine.
func (n network) remove(ctx context.Context, slot int) error {
	if err := n.run(ctx, "", "link", "del", "dev", n.veth(slot)); err != nil && !notFound(err) {
		return err
	}
	if _, err := os.Stat(n.netnsPath(slot)); err == nil {
		if err := n.run(ctx, "", "netns", "del", n.netns(slot)); err != nil {
			return err
		}
	}
	return unbind(n.usernsPath(slot))
}

func notFound(err error) bool {
	s := err.Error()
	return strings.Contains(s, "Cannot find device") || strings.Contains(s, "does not exist")
}

func (n network) run(ctx context.Context, ns string, args ...string) error {
	return n.exec(ctx, ns, nil, args...)
}

func (n network) batch(ctx context.Context, ns, cmds string) error {
	return n.exec(ctx, ns, strings.NewReader(cmds), "-batch", "-")
}

func (n network) exec(ctx context.Context, ns string, stdin *strings.Reader, args ...string) error {
	if ns != "" {
		args = append([]string{"-n", ns}, args...)
	}
	cmd := exec.CommandContext(ctx, n.ip, args...)
	if stdin != nil {
		cmd.Stdin = stdin
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		return fmt.Errorf("%w: ip %s: %v: %s", ErrRuntime, strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return nil
}
