package overlay

import (
	"context"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/netnstest"
)

// fwHost is a namespace with an address on the veth between the two.
type fwHost struct {
	ns   string
	addr string
}

// inNS runs fn in h's namespace and returns its error.
func (h fwHost) do(t *testing.T, fn func() error) error {
	var err error
	netnstest.In(t, h.ns, func() { err = fn() })
	return err
}

// serve starts TCP and UDP echo servers on h's address and port.
func (h fwHost) serve(t *testing.T, port string) {
	t.Helper()
	err := h.do(t, func() error {
		l, err := net.Listen("tcp6", net.JoinHostPort(h.addr, port))
		if err != nil {
			return err
		}
		t.Cleanup(func() { l.Close() })
		go func() {
			for {
				c, err := l.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					buf := make([]byte, 64)
					for {
						n, err := c.Read(buf)
						if err != nil {
							return
						}
						c.Write(buf[:n])
					}
				}()
			}
		}()
		u, err := net.ListenPacket("udp6", net.JoinHostPort(h.addr, port))
		if err != nil {
			return err
		}
		t.Cleanup(func() { u.Close() })
		go func() {
			buf := make([]byte, 64)
			for {
				n, from, err := u.ReadFrom(buf)
				if err != nil {
					return
				}
				u.WriteTo(buf[:n], from)
			}
		}()
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// tcpOpen dials from h to addr:port and exchanges one message; it
// returns the open connection, or nil if nothing came back in time.
func (h fwHost) tcpOpen(t *testing.T, addr, port string) net.Conn {
	var c net.Conn
	h.do(t, func() error {
		var err error
		c, err = net.DialTimeout("tcp6", net.JoinHostPort(addr, port), 700*time.Millisecond)
		if err != nil {
			c = nil
			return err
		}
		if !roundTrip(c) {
			c.Close()
			c = nil
		}
		return nil
	})
	return c
}

func roundTrip(c net.Conn) bool {
	c.SetDeadline(time.Now().Add(700 * time.Millisecond))
	if _, err := c.Write([]byte("knock")); err != nil {
		return false
	}
	buf := make([]byte, 5)
	_, err := c.Read(buf)
	return err == nil && string(buf) == "knock"
}

func (h fwHost) tcp(t *testing.T, addr, port string) bool {
	c := h.tcpOpen(t, addr, port)
	if c != nil {
		c.Close()
	}
	return c != nil
}

func (h fwHost) udp(t *testing.T, addr, port string) bool {
	ok := false
	h.do(t, func() error {
		c, err := net.Dial("udp6", net.JoinHostPort(addr, port))
		if err != nil {
			return err
		}
		defer c.Close()
		ok = roundTrip(c)
		return nil
	})
	return ok
}

// A default-deny inbound filter in a namespace: only declared ports (and
// replies to the namespace's own connections) get in; a change of ports
// keeps established connections; removal opens everything again.
func TestFirewall(t *testing.T) {
	netnstest.NeedRoot(t, "nft")
	a := fwHost{netnstest.NewNetns(t, netnstest.Name("zovf")), "fd77:6f76::1"}
	b := fwHost{netnstest.NewNetns(t, netnstest.Name("zovf")), "fd77:6f76::2"}
	netnstest.Run(t, "ip", "-n", a.ns, "link", "add", "fw0", "type", "veth", "peer", "name", "fw0", "netns", b.ns)
	for _, h := range []fwHost{a, b} {
		netnstest.Run(t, "ip", "-n", h.ns, "addr", "add", h.addr+"/64", "dev", "fw0", "nodad")
		netnstest.Run(t, "ip", "-n", h.ns, "link", "set", "fw0", "up")
	}
	for _, p := range []string{"8080", "9090"} {
		a.serve(t, p)
	}
	b.serve(t, "7070")
	if !b.tcp(t, a.addr, "9090") || !b.udp(t, a.addr, "9090") {
		t.Fatal("no connectivity before the firewall")
	}

	fw := Firewall{Netns: a.ns}
	ctx := context.Background()
	t.Cleanup(func() { fw.Remove(ctx) })
	if err := fw.Apply(ctx, Ports{TCP: []uint16{8080}, UDP: []uint16{8080}}); err != nil {
		t.Fatal(err)
	}
	if !b.tcp(t, a.addr, "8080") || !b.udp(t, a.addr, "8080") {
		t.Fatal("a declared port is closed")
	}
	if b.tcp(t, a.addr, "9090") || b.udp(t, a.addr, "9090") {
		t.Fatal("an undeclared port is open")
	}
	// Replies to a's own connections come in.
	if !a.tcp(t, b.addr, "7070") || !a.udp(t, b.addr, "7070") {
		t.Fatal("replies to the namespace's own connections are dropped")
	}
	if out, err := netnstest.Exec(b.ns, "ping", "-6", "-c", "1", "-W", "2", a.addr); err != nil {
		t.Fatalf("ping dropped: %s", out)
	}

	// Change the ports: 8080 closes for new connections, an open one
	// goes on; 9090 opens.
	open := b.tcpOpen(t, a.addr, "8080")
	if open == nil {
		t.Fatal("cannot open a connection to a declared port")
	}
	defer open.Close()
	if err := fw.Apply(ctx, Ports{TCP: []uint16{9090, 9090}}); err != nil {
		t.Fatal(err)
	}
	if b.tcp(t, a.addr, "8080") || b.udp(t, a.addr, "8080") {
		t.Fatal("a port closed by the update is still open")
	}
	if !b.tcp(t, a.addr, "9090") {
		t.Fatal("a port opened by the update is closed")
	}
	if !roundTrip(open) {
		t.Fatal("an established connection was cut by the update")
	}

	if err := fw.Remove(ctx); err != nil {
		t.Fatal(err)
	}
	if err := fw.Remove(ctx); err != nil {
		t.Fatalf("removing twice: %v", err)
	}
	if !b.tcp(t, a.addr, "8080") || !b.udp(t, a.addr, "9090") {
		t.Fatal("ports stay closed after the firewall is removed")
	}
}

// Only the named interface is filtered.
func TestFirewallIface(t *testing.T) {
	netnstest.NeedRoot(t, "nft")
	a := fwHost{netnstest.NewNetns(t, netnstest.Name("zovf")), "fd77:6f77::1"}
	b := fwHost{netnstest.NewNetns(t, netnstest.Name("zovf")), "fd77:6f77::2"}
	netnstest.Run(t, "ip", "-n", a.ns, "link", "add", "fw0", "type", "veth", "peer", "name", "fw0", "netns", b.ns)
	for _, h := range []fwHost{a, b} {
		netnstest.Run(t, "ip", "-n", h.ns, "addr", "add", h.addr+"/64", "dev", "fw0", "nodad")
		netnstest.Run(t, "ip", "-n", h.ns, "link", "set", "fw0", "up")
	}
	a.serve(t, "9090")
	ctx := context.Background()
	other := Firewall{Netns: a.ns, Iface: "zgov9"}
	if err := other.Apply(ctx, Ports{}); err != nil {
		t.Fatal(err)
	}
	if !b.tcp(t, a.addr, "9090") {
		t.Fatal("a filter on another interface dropped traffic")
	}
	this := Firewall{Netns: a.ns, Iface: "fw0"}
	if err := this.Apply(ctx, Ports{}); err != nil {
		t.Fatal(err)
	}
	if b.tcp(t, a.addr, "9090") {
		t.Fatal("a filter on the interface let an undeclared port in")
	}
}

func TestFirewallRulesRefused(t *testing.T) {
	t.Parallel()
	if _, err := (Firewall{Iface: "eth0; flush ruleset"}).Rules(Ports{}); err == nil {
		t.Fatal("an interface name with nft syntax accepted")
	}
	if _, err := (Firewall{}).Rules(Ports{TCP: []uint16{0}}); err == nil {
		t.Fatal("port 0 accepted")
	}
	r, err := (Firewall{}).Rules(Ports{TCP: []uint16{443, 80, 443}})
	if err != nil || !strings.Contains(r, "tcp dport { 80, 443 } accept") || strings.Contains(r, "udp dport") {
		t.Fatalf("rules: %v\n%s", err, r)
	}
	err = Firewall{NFT: "/nonexistent/nft"}.Apply(context.Background(), Ports{})
	if err == nil || !strings.Contains(err.Error(), "nft") {
		t.Fatalf("missing nft: %v", err)
	}
}
