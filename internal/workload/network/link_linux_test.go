package network

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/netnstest"
)

// needRoot skips unless the test can make namespaces and run ip and nft.
func needRoot(t *testing.T) Tools {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("needs root for network namespaces")
	}
	tools, err := LookTools()
	if err != nil {
		t.Skipf("network tools missing: %v", err)
	}
	if _, err := exec.LookPath("ping"); err != nil {
		t.Skip("ping missing: install iputils-ping")
	}
	return tools
}

func sh(t *testing.T, args ...string) { t.Helper(); netnstest.Run(t, args...) }

func inNetns(t *testing.T, ns string, fn func()) { t.Helper(); netnstest.In(t, ns, fn) }

// topology: a node namespace and three container namespaces linked to it
// the way the container manager links them.
type topology struct {
	tools Tools
	node  string
	ctrs  []string
}

func newTopology(t *testing.T, tools Tools, n int) *topology {
	p := fmt.Sprintf("zgnt%d", os.Getpid()%100000)
	top := &topology{tools: tools, node: p + "n"}
	tools.Netns = top.node
	top.tools = tools
	sh(t, "ip", "netns", "add", top.node)
	t.Cleanup(func() { exec.Command("ip", "netns", "del", top.node).Run() })
	for i := range n {
		ns := fmt.Sprintf("%sc%d", p, i)
		sh(t, "ip", "netns", "add", ns)
		t.Cleanup(func() { exec.Command("ip", "netns", "del", ns).Run() })
		host := fmt.Sprintf("%sh%d", p, i)
		sh(t, "ip", "-n", top.node, "link", "add", host, "type", "veth", "peer", "name", "eth0", "netns", ns)
		sh(t, "ip", "-n", top.node, "link", "set", host, "up")
		sh(t, "ip", "-n", ns, "link", "set", "eth0", "up")
		sh(t, "ip", "-n", ns, "link", "set", "lo", "up")
		top.ctrs = append(top.ctrs, ns)
	}
	if err := top.tools.EnableForwarding(t.Context()); err != nil {
		t.Fatal(err)
	}
	return top
}

func (top *topology) hostIf(i int) string {
	return fmt.Sprintf("%sh%d", strings.TrimSuffix(top.node, "n"), i)
}

func canPing(ns string, a netip.Addr) bool {
	return exec.Command("ip", "netns", "exec", ns, "ping", "-6", "-c", "1", "-W", "1", a.String()).Run() == nil
}

// listen serves "hello" on port inside ns.
func listen(t *testing.T, ns string, a netip.Addr, port int) {
	var l net.Listener
	inNetns(t, ns, func() {
		var err error
		if l, err = net.Listen("tcp6", netip.AddrPortFrom(a, uint16(port)).String()); err != nil {
			t.Error(err)
		}
	})
	if l == nil {
		t.FailNow()
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			c.Write([]byte("hello"))
			c.Close()
		}
	}()
}

func canTCP(t *testing.T, ns string, a netip.Addr, port int) bool {
	ok := false
	inNetns(t, ns, func() {
		d := net.Dialer{Timeout: 700 * time.Millisecond}
		c, err := d.Dial("tcp6", netip.AddrPortFrom(a, uint16(port)).String())
		if err != nil {
			return
		}
		defer c.Close()
		buf := make([]byte, 5)
		c.SetDeadline(time.Now().Add(time.Second))
		n, _ := c.Read(buf)
		ok = string(buf[:n]) == "hello"
	})
	return ok
}

// Members of one network reach each other by ping and on declared ports
// only; a member of another network reaches neither, and is not reached.
func TestAttachIsolates(t *testing.T) {
	tools := needRoot(t)
	top := newTopology(t, tools, 3)
	ctx := context.Background()
	netA, _ := Prefix("test", 1, "a")
	netB, _ := Prefix("test", 2, "a")
	idA, _ := ID("test", 1, "a")
	idB, _ := ID("test", 2, "a")
	subA, _ := NodeSubnet(netA, 1)
	subB, _ := NodeSubnet(netB, 1)
	addr := func(sub netip.Prefix, c uint64) netip.Addr { a, _ := MemberAddr(sub, c, "web"); return a }
	members := []Member{
		{Net: netA, ID: idA, Addr: addr(subA, 1), Ports: []uint16{8080}},
		{Net: netA, ID: idA, Addr: addr(subA, 2), Ports: []uint16{8080}},
		{Net: netB, ID: idB, Addr: addr(subB, 3), Ports: []uint16{8080}},
	}
	for i, m := range members {
		l := Link{Netns: top.ctrs[i], HostIf: top.hostIf(i)}
		if err := top.tools.Attach(ctx, l, m); err != nil {
			t.Fatal(err)
		}
		if err := top.tools.Attach(ctx, l, m); err != nil { // idempotent
			t.Fatalf("second attach: %v", err)
		}
		listen(t, top.ctrs[i], m.Addr, 8080)
		listen(t, top.ctrs[i], m.Addr, 9090) // not declared
	}
	time.Sleep(200 * time.Millisecond) // addresses settle (nodad: no DAD wait)
	if !canPing(top.ctrs[0], members[1].Addr) || !canPing(top.ctrs[1], members[0].Addr) {
		t.Fatal("members of one network cannot ping each other")
	}
	if !canTCP(t, top.ctrs[0], members[1].Addr, 8080) {
		t.Fatal("member cannot reach a declared port of another")
	}
	if canTCP(t, top.ctrs[0], members[1].Addr, 9090) {
		t.Fatal("member reached an undeclared port")
	}
	// A container that routes to the other network itself (as root in its
	// namespace could) is still stopped by the node's filter.
	sh(t, "ip", "-n", top.ctrs[2], "-6", "route", "add", netA.String(), "via", GatewayAddr.String(), "dev", "eth0")
	sh(t, "ip", "-n", top.ctrs[0], "-6", "route", "add", netB.String(), "via", GatewayAddr.String(), "dev", "eth0")
	for _, pair := range [][2]int{{2, 0}, {0, 2}, {2, 1}} {
		from, to := pair[0], pair[1]
		if canPing(top.ctrs[from], members[to].Addr) || canTCP(t, top.ctrs[from], members[to].Addr, 8080) {
			t.Fatalf("container %d (network %s) reached container %d (network %s)", from, members[from].Net, to, members[to].Net)
		}
	}
	// Detach removes the filter; attaching again restores it.
	if err := top.tools.Detach(ctx, top.hostIf(1)); err != nil {
		t.Fatal(err)
	}
	if err := top.tools.Detach(ctx, top.hostIf(1)); err != nil {
		t.Fatalf("second detach: %v", err)
	}
}

// Two networks whose /48s collide (another owner named a network so that
// its prefix is the victim's) are still two networks on one node: the
// filter admits a packet by the link it came from, a member of the same
// network, not by its source address. A container of one cannot reach a
// container of the other even when it sends from an address of the
// other's subnet.
func TestAttachIsolatesCollidingPrefixes(t *testing.T) {
	tools := needRoot(t)
	top := newTopology(t, tools, 3)
	ctx := context.Background()
	victim, attacker := collidingNets[0], collidingNets[1]
	net, _ := Prefix(collidingChain, victim.twin, victim.name)
	idV, _ := ID(collidingChain, victim.twin, victim.name)
	idA, _ := ID(collidingChain, attacker.twin, attacker.name)
	sub, _ := NodeSubnet(net, 1)
	addr := func(c uint64) netip.Addr { a, _ := MemberAddr(sub, c, "web"); return a }
	members := []Member{
		{Net: net, ID: idV, Addr: addr(1), Ports: []uint16{8080}},
		{Net: net, ID: idV, Addr: addr(2), Ports: []uint16{8080}},
		{Net: net, ID: idA, Addr: addr(3), Ports: []uint16{8080}},
	}
	for i, m := range members {
		if err := top.tools.Attach(ctx, Link{Netns: top.ctrs[i], HostIf: top.hostIf(i)}, m); err != nil {
			t.Fatal(err)
		}
		listen(t, top.ctrs[i], m.Addr, 8080)
	}
	time.Sleep(200 * time.Millisecond) // addresses settle (nodad: no DAD wait)
	if !canPing(top.ctrs[0], members[1].Addr) || !canTCP(t, top.ctrs[1], members[0].Addr, 8080) {
		t.Fatal("members of one network cannot reach each other")
	}
	for _, pair := range [][2]int{{2, 0}, {2, 1}, {0, 2}} {
		from, to := pair[0], pair[1]
		if canPing(top.ctrs[from], members[to].Addr) || canTCP(t, top.ctrs[from], members[to].Addr, 8080) {
			t.Fatalf("container %d (network %s) reached container %d (network %s) through their common prefix %s",
				from, members[from].ID, to, members[to].ID, net)
		}
	}
	// Sending from a victim's address does not help: the link is not a
	// member, and a link sends only from its own address.
	sh(t, "ip", "-n", top.ctrs[2], "-6", "addr", "add", addr(4).String()+"/128", "dev", "eth0", "nodad")
	if canTCPFrom(t, top.ctrs[2], addr(4), members[0].Addr, 8080) {
		t.Fatal("a spoofed source address reached the victim")
	}
	// Moving the link to the victim's network (a new container in the
	// slot) takes it out of the attacker's set.
	if err := top.tools.Attach(ctx, Link{Netns: top.ctrs[2], HostIf: top.hostIf(2)}, Member{Net: net, ID: idV, Addr: addr(3), Ports: []uint16{8080}}); err != nil {
		t.Fatal(err)
	}
	sets, err := top.tools.memberSets(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got := sets[membersSet(idA)]; len(got) != 0 {
		t.Errorf("the attacker's set still holds %v", got)
	}
	for i := range members {
		if err := top.tools.Detach(ctx, top.hostIf(i)); err != nil {
			t.Fatal(err)
		}
	}
	if sets, _ := top.tools.memberSets(ctx); len(sets) != 0 {
		t.Errorf("sets left after every link was detached: %v", sets)
	}
}

func canTCPFrom(t *testing.T, ns string, from, to netip.Addr, port int) bool {
	ok := false
	inNetns(t, ns, func() {
		d := net.Dialer{Timeout: 700 * time.Millisecond, LocalAddr: &net.TCPAddr{IP: from.AsSlice()}}
		c, err := d.Dial("tcp6", netip.AddrPortFrom(to, uint16(port)).String())
		if err == nil {
			ok = true
			c.Close()
		}
	})
	return ok
}
