package zos

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/insomniacslk/dhcp/dhcpv4"
	"github.com/insomniacslk/dhcp/dhcpv4/server4"

	"github.com/zerogrid/zerogrid/internal/hub"
	"github.com/zerogrid/zerogrid/internal/netnstest"
)

// The boot network the test builds inside its own namespace.
var (
	bootServerIP = net.IPv4(10, 77, 0, 1)
	bootClientIP = net.IPv4(10, 77, 0, 10)
	bootMask     = net.CIDRMask(24, 32)
)

// bootLease is short, so that the test sees PID 1 renew it.
const bootLease = 20 // seconds

// bootDHCP answers every DISCOVER and REQUEST on the boot network with
// bootClientIP and the iPXE script's URL as the boot file: Debian's
// ipxe-qemu ROM takes an http:// boot file name as a script to fetch.
func bootDHCP(t *testing.T, ns, ifname, script string) {
	t.Helper()
	handler := func(conn net.PacketConn, _ net.Addr, m *dhcpv4.DHCPv4) {
		var typ dhcpv4.MessageType
		switch m.MessageType() {
		case dhcpv4.MessageTypeDiscover:
			typ = dhcpv4.MessageTypeOffer
		case dhcpv4.MessageTypeRequest:
			typ = dhcpv4.MessageTypeAck
		default:
			return
		}
		resp, err := dhcpv4.NewReplyFromRequest(m,
			dhcpv4.WithMessageType(typ),
			dhcpv4.WithYourIP(bootClientIP),
			dhcpv4.WithServerIP(bootServerIP),
			dhcpv4.WithNetmask(bootMask),
			dhcpv4.WithRouter(bootServerIP),
			dhcpv4.WithLeaseTime(bootLease),
			dhcpv4.WithOption(dhcpv4.OptServerIdentifier(bootServerIP)),
		)
		if err != nil {
			return
		}
		resp.BootFileName = script
		conn.WriteTo(resp.ToBytes(), &net.UDPAddr{IP: net.IPv4bcast, Port: dhcpv4.ClientPort})
	}
	var srv *server4.Server
	var err error
	netnstest.In(t, ns, func() {
		srv, err = server4.NewServer(ifname, &net.UDPAddr{IP: net.IPv4zero, Port: dhcpv4.ServerPort}, handler)
	})
	if err != nil {
		t.Fatalf("DHCP server: %v", err)
	}
	go srv.Serve()
	t.Cleanup(func() { srv.Close() })
}

// TestNetworkBoot boots a diskless QEMU machine from the network: its
// firmware's iPXE (Debian's ipxe-qemu ROM) gets the script's URL by DHCP
// and loads the script, the kernel and the initramfs over HTTP from a
// zgridd hub serving /boot/; PID 1 then fetches and runs the release as
// in TestBootDirect. The machine's tap, the bridge, the DHCP server and the
// hub are all inside a namespace the test creates.
func TestNetworkBoot(t *testing.T) {
	netnstest.NeedRoot(t, "/dev/net/tun")
	q := needQEMU(t)
	if _, err := os.Stat("/usr/lib/ipxe/qemu/efi-virtio.rom"); err != nil {
		t.Skip("Debian's iPXE ROM is not installed (CI installs ipxe-qemu)")
	}
	img := bootImage(t)
	ns := netnstest.NewNetns(t, netnstest.Name("zboot"))
	netnstest.Run(t, "ip", "-n", ns, "link", "add", "br0", "type", "bridge")
	netnstest.Run(t, "ip", "-n", ns, "addr", "add", "10.77.0.1/24", "dev", "br0")
	netnstest.Run(t, "ip", "-n", ns, "tuntap", "add", "dev", "tap0", "mode", "tap")
	netnstest.Run(t, "ip", "-n", ns, "link", "set", "tap0", "master", "br0")
	netnstest.Run(t, "ip", "-n", ns, "link", "set", "tap0", "up")
	netnstest.Run(t, "ip", "-n", ns, "link", "set", "br0", "up")

	// The boot directory: the image's files, and a script that points
	// PID 1 at this hub.
	dir := t.TempDir()
	for _, f := range []string{KernelFile, InitramfsFile, ReleaseFile} {
		if err := os.Link(filepath.Join(img, f), filepath.Join(dir, f)); err != nil {
			t.Fatal(err)
		}
	}
	hubURL := "http://10.77.0.1:80"
	// The script first asks iPXE to verify a signature: Debian's ROM has
	// no imgverify (docs/boot.md), which the test pins, so that a ROM that
	// gains it shows up here and the boot chain can start using it.
	script := fmt.Sprintf("#!ipxe\nimgverify %s %s.sig || echo Zero-OS: this iPXE cannot verify\necho Zero-OS network boot\nkernel %s console=ttyS0 panic=-1 zos.hub=%s\ninitrd %s\nboot\n", KernelFile, KernelFile, KernelFile, hubURL, InitramfsFile)
	if err := os.WriteFile(filepath.Join(dir, ScriptFile), []byte(script), 0o644); err != nil {
		t.Fatal(err)
	}
	srv, err := hub.New(hub.Config{Dir: t.TempDir(), BootDir: dir})
	if err != nil {
		t.Fatal(err)
	}
	var l net.Listener
	netnstest.In(t, ns, func() { l, err = net.Listen("tcp", "10.77.0.1:80") })
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(l)
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		srv.Shutdown(ctx)
	})
	bootDHCP(t, ns, "br0", hubURL+"/boot/"+ScriptFile)

	// QEMU runs inside the namespace, where its tap is.
	v := startVMCmd(t, exec.Command("ip", "netns", "exec", ns, q,
		"-boot", "n",
		"-netdev", "tap,id=n0,ifname=tap0,script=no,downscript=no",
		// QEMU's default option ROM for virtio-net-pci is efi-virtio.rom,
		// found in Debian's ipxe-qemu (an explicit romfile= path is
		// silently not loaded by this QEMU).
		"-device", "virtio-net-pci,netdev=n0"))
	v.waitFor(t, "imgverify: command not found", append(panics, "No bootable device")...)
	v.waitFor(t, "Zero-OS network boot", append(panics, "No bootable device")...)
	v.waitFor(t, "Zero-OS init starting", panics...)
	v.waitFor(t, "network up", panics...)
	v.waitFor(t, "node agent started from memory", append(panics, "REFUSED")...)
	v.waitFor(t, "hub ready: http://127.0.0.1:5000", panics...)
	v.waitFor(t, "DHCP lease renewed", panics...) // a lost reply is retried, not fatal

	// Nothing on the booted node listens on TCP from the outside: every
	// port answers with a refusal. (Its agent here, a hub, listens on the
	// node's loopback only.)
	// The scan sees an open port: the hub's, on the boot server. (A scan
	// of a local address may also see a socket connected to itself, so
	// only port 80's presence is checked.)
	if open, _ := scanTCP(t, ns, bootServerIP); !slices.Contains(open, 80) {
		t.Fatalf("scan of the boot server finds %v open, not the hub's port 80: the scan cannot be trusted", open)
	}
	open, silent := scanTCP(t, ns, bootClientIP)
	if len(open) > 0 || silent > 0 {
		t.Fatalf("TCP scan of the node: open %v, %d ports neither accepted nor refused", open, silent)
	}
}
