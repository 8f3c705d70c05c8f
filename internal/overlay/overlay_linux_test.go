package overlay

import (
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/netnstest"
)

// testNode is one host: a namespace with an underlay address on a shared
// bridge and an overlay device.
type testNode struct {
	ns   string
	veth string // the underlay link, inside ns
	ip   netip.Addr
	id   identity.PrivateKey
	ov   *Overlay
}

func (n *testNode) peer() Peer {
	return Peer{Identity: n.id.Public(), Key: n.ov.PublicKey(), Endpoint: netip.AddrPortFrom(n.ip, DefaultListenPort)}
}

// newMesh makes n hosts on one bridge, each with an overlay, all peered.
func newMesh(t *testing.T, n int, rotate time.Duration) []*testNode {
	return newMeshWith(t, n, func(c *Config) { c.Rotate = rotate })
}

// newMeshWith is newMesh with each node's Config changed by set.
func newMeshWith(t *testing.T, n int, set func(*Config)) []*testNode {
	netnstest.NeedRoot(t, "ping", "/dev/net/tun")
	sw := netnstest.NewNetns(t, netnstest.Name("zovs"))
	netnstest.Run(t, "ip", "-n", sw, "link", "add", "br0", "type", "bridge")
	netnstest.Run(t, "ip", "-n", sw, "link", "set", "br0", "up")
	prefix, _ := Prefix("overlay-test")
	subnet := 16 + os.Getpid()%200
	var nodes []*testNode
	for i := range n {
		nd := &testNode{ns: netnstest.NewNetns(t, netnstest.Name("zovn")), veth: "ul0",
			ip: netip.MustParseAddr(fmt.Sprintf("10.201.%d.%d", subnet, i+1))}
		sp := fmt.Sprintf("p%d", i)
		netnstest.Run(t, "ip", "-n", sw, "link", "add", sp, "type", "veth", "peer", "name", nd.veth, "netns", nd.ns)
		netnstest.Run(t, "ip", "-n", sw, "link", "set", sp, "master", "br0", "up")
		netnstest.Run(t, "ip", "-n", nd.ns, "addr", "add", nd.ip.String()+"/24", "dev", nd.veth)
		netnstest.Run(t, "ip", "-n", nd.ns, "link", "set", nd.veth, "up")
		var err error
		if nd.id, err = identity.GenerateKey(rand.Reader); err != nil {
			t.Fatal(err)
		}
		netnstest.In(t, nd.ns, func() {
			cfg := Config{Identity: nd.id, Prefix: prefix, Logger: slog.New(slog.DiscardHandler)}
			set(&cfg)
			nd.ov, err = New(cfg)
		})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(nd.ov.Close)
		nodes = append(nodes, nd)
	}
	for _, nd := range nodes {
		var peers []Peer
		for _, o := range nodes {
			if o != nd {
				peers = append(peers, o.peer())
			}
		}
		if err := nd.ov.SetPeers(context.Background(), peers); err != nil {
			t.Fatal(err)
		}
	}
	return nodes
}

func ping(from *testNode, to netip.Addr, src ...string) bool {
	args := []string{"ping", "-6", "-c", "1", "-W", "1"}
	if len(src) > 0 {
		args = append(args, "-I", src[0])
	}
	_, err := netnstest.Exec(from.ns, append(args, to.String())...)
	return err == nil
}

// waitPing allows for WireGuard's 5 s handshake retry: a node that was
// given its peers before the other side knew it had its first initiation
// dropped.
func waitPing(t *testing.T, from *testNode, to netip.Addr) {
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for !ping(from, to) {
		if time.Now().After(deadline) {
			t.Fatalf("%s cannot ping %s over the overlay", from.ns, to)
		}
	}
}

// waitPingFrom is waitPing with a source address.
func waitPingFrom(t *testing.T, from *testNode, to, src netip.Addr) {
	t.Helper()
	deadline := time.Now().Add(40 * time.Second)
	for !ping(from, to, src.String()) {
		if time.Now().After(deadline) {
			t.Fatalf("%s cannot ping %s from %s over the overlay", from.ns, to, src)
		}
	}
}

// listen serves an echo of what it reads on the overlay address of to.
func listen(t *testing.T, to *testNode, port int) {
	var l net.Listener
	netnstest.In(t, to.ns, func() {
		var err error
		if l, err = net.Listen("tcp6", netip.AddrPortFrom(to.ov.Address(), uint16(port)).String()); err != nil {
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
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
}

func dial(t *testing.T, from *testNode, to *testNode, port int) net.Conn {
	var c net.Conn
	var err error
	netnstest.In(t, from.ns, func() {
		d := net.Dialer{Timeout: 3 * time.Second}
		c, err = d.Dial("tcp6", netip.AddrPortFrom(to.ov.Address(), uint16(port)).String())
	})
	if err != nil {
		t.Fatalf("%s dial %s: %v", from.ns, to.ov.Address(), err)
	}
	return c
}

func echo(t *testing.T, c net.Conn, msg []byte) {
	t.Helper()
	c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := c.Write(msg); err != nil {
		t.Fatal(err)
	}
	got := make([]byte, len(msg))
	if _, err := io.ReadFull(c, got); err != nil || !bytes.Equal(got, msg) {
		t.Fatalf("echo: %v", err)
	}
}

// Three hosts reach each other over the overlay (ping and TCP) on
// post-quantum sessions, and the wire between them carries no plaintext.
func TestMesh(t *testing.T) {
	nodes := newMesh(t, 3, time.Hour)
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				waitPing(t, a, b.ov.Address())
			}
		}
	}
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b && !waitFor(10*time.Second, nil, func() bool { return a.ov.PostQuantum(b.ov.PublicKey()) }) {
				t.Fatalf("%s has no post-quantum session with %s: %+v", a.ns, b.ns, a.ov.Problems())
			}
		}
	}
	for _, n := range nodes {
		listen(t, n, 7000)
	}
	for _, a := range nodes {
		for _, b := range nodes {
			if a != b {
				c := dial(t, a, b, 7000)
				echo(t, c, []byte("from "+a.ov.Address().String()+" to "+b.ov.Address().String()))
				c.Close()
			}
		}
	}
	marker := []byte("ZEROGRID-PLAINTEXT-MARKER-0123456789")
	frames := capture(t, nodes[0], func() {
		c := dial(t, nodes[0], nodes[1], 7000)
		defer c.Close()
		for range 20 {
			echo(t, c, marker)
		}
	})
	udp := 0
	for _, f := range frames {
		if bytes.Contains(f, marker) {
			t.Fatal("the marker crossed the underlay in the clear")
		}
		if isUDPTo(f, DefaultListenPort) {
			udp++
		}
	}
	if udp < 20 {
		t.Fatalf("captured %d WireGuard datagrams (of %d frames): the capture saw nothing", udp, len(frames))
	}
}

// capture records the frames on n's underlay link while fn runs.
func capture(t *testing.T, n *testNode, fn func()) [][]byte {
	t.Helper()
	var fd int
	netnstest.In(t, n.ns, func() {
		ifi, err := net.InterfaceByName(n.veth)
		if err != nil {
			t.Error(err)
			return
		}
		proto := int(htons(syscall.ETH_P_ALL))
		if fd, err = syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, proto); err != nil {
			t.Error(err)
			return
		}
		if err = syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: htons(syscall.ETH_P_ALL), Ifindex: ifi.Index}); err != nil {
			t.Error(err)
		}
	})
	if fd == 0 {
		t.FailNow()
	}
	defer syscall.Close(fd)
	tv := syscall.NsecToTimeval(int64(200 * time.Millisecond))
	syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	var frames [][]byte
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 65536)
		for idle := 0; idle < 3; {
			k, _, err := syscall.Recvfrom(fd, buf, 0)
			if err != nil {
				idle++
				continue
			}
			idle = 0
			frames = append(frames, append([]byte(nil), buf[:k]...))
		}
	}()
	fn()
	<-done
	return frames
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// isUDPTo reports whether an Ethernet frame is IPv4 UDP to port.
func isUDPTo(f []byte, port int) bool {
	if len(f) < 14+20+8 || f[12] != 0x08 || f[13] != 0x00 || f[14+9] != 17 {
		return false
	}
	ihl := int(f[14]&0x0f) * 4
	if len(f) < 14+ihl+4 {
		return false
	}
	src := int(f[14+ihl])<<8 | int(f[14+ihl+1])
	dst := int(f[14+ihl+2])<<8 | int(f[14+ihl+3])
	return dst == port || src == port
}

// A peer cannot send from an address that is not its own: WireGuard's
// cryptokey routing drops it. A removed peer is cut off at once.
func TestSpoofAndRemove(t *testing.T) {
	nodes := newMesh(t, 3, time.Hour)
	a, b, c := nodes[0], nodes[1], nodes[2]
	waitPing(t, c, a.ov.Address())
	// c claims b's address as its own source.
	netnstest.Run(t, "ip", "-n", c.ns, "addr", "add", b.ov.Address().String()+"/128", "dev", c.ov.Tun(), "nodad")
	if ping(c, a.ov.Address(), b.ov.Address().String()) {
		t.Fatal("a packet from c with b's source address reached a")
	}
	waitPingFrom(t, c, a.ov.Address(), c.ov.Address())
	// a drops c.
	if err := a.ov.SetPeers(context.Background(), []Peer{b.peer()}); err != nil {
		t.Fatal(err)
	}
	if ping(c, a.ov.Address(), c.ov.Address().String()) || ping(a, c.ov.Address()) {
		t.Fatal("a removed peer still reaches a")
	}
	waitPing(t, b, a.ov.Address()) // b's session was not touched
}
