package grid

import (
	"fmt"
	"net"
	"net/netip"
	"net/url"

	"github.com/zerogrid/zerogrid/internal/hub"
)

// HubClient returns a client of the grid's hub. A grid's hub listens on
// the machine that runs `zgrid up` (on loopback, or with namespaces on the
// host's end of the nodes' links), where plain HTTP does not leave the
// machine; HubClient allows plain HTTP only after checking that the hub's
// address is one of this machine's. Digests are verified either way.
func (f *File) HubClient() (*hub.Client, error) {
	if f.Hub == "" {
		return nil, fmt.Errorf("grid file names no hub (start the grid again with `zgrid up --dir DIR`)")
	}
	u, err := url.Parse(f.Hub)
	if err != nil {
		return nil, fmt.Errorf("grid file's hub %q: %w", f.Hub, err)
	}
	c, err := hub.NewClient(f.Hub, hub.ClientOptions{Insecure: u.Scheme == "http" && thisMachine(u.Hostname())})
	if err != nil {
		return nil, fmt.Errorf("grid file's hub: %w (a local grid's hub is on this machine: is this grid.json from another one?)", err)
	}
	return c, nil
}

// thisMachine reports whether host is an IP address of one of this
// machine's interfaces (in this network namespace).
func thisMachine(host string) bool {
	ip, err := netip.ParseAddr(host)
	if err != nil {
		return false
	}
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		return false
	}
	for _, a := range addrs {
		if n, ok := a.(*net.IPNet); ok {
			if local, ok := netip.AddrFromSlice(n.IP); ok && local.Unmap() == ip.Unmap() {
				return true
			}
		}
	}
	return false
}
