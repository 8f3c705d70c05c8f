package gateway

import (
	"net"
	"net/netip"
	"sync"
)

// connLimiter counts open client connections, in total and per client
// address (per /64 for IPv6, where one client holds a whole prefix).
type connLimiter struct {
	max, perIP int

	mu    sync.Mutex
	total int
	byIP  map[netip.Addr]int
}

func newConnLimiter(max, perIP int) *connLimiter {
	return &connLimiter{max: max, perIP: perIP, byIP: make(map[netip.Addr]int)}
}

// clientKey is the address a per-client limit applies to.
func clientKey(a netip.Addr) netip.Addr {
	a = a.Unmap()
	if a.Is6() {
		p, _ := a.Prefix(64)
		return p.Addr()
	}
	return a
}

// acquire takes a slot for a connection from a, or returns the reason it
// cannot ("total" or "per-ip").
func (l *connLimiter) acquire(a netip.Addr) (release func(), reason string) {
	k := clientKey(a)
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.total >= l.max {
		return nil, "total"
	}
	if l.byIP[k] >= l.perIP {
		return nil, "per-ip"
	}
	l.total++
	l.byIP[k]++
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			l.total--
			if l.byIP[k]--; l.byIP[k] == 0 {
				delete(l.byIP, k)
			}
			l.mu.Unlock()
		})
	}, ""
}

// limitedConn gives its slot back when first closed.
type limitedConn struct {
	net.Conn
	release func()
	once    sync.Once
}

func (c *limitedConn) Close() error {
	err := c.Conn.Close()
	c.once.Do(c.release)
	return err
}

// CloseWrite half-closes the underlying connection when it can.
func (c *limitedConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
