package gateway

import (
	"io"
	"net"
	"net/netip"
	"time"
)

// passthrough splices a client's TLS bytes (the ClientHello first, held
// in c) to a stream of a passthrough backend of name, and back. The
// gateway never holds a key for the name and never sees plaintext.
func (g *Gateway) passthrough(c *replayConn, name string, client netip.AddrPort) {
	defer c.Close()
	dctx, cancel := contextWithTimeout(g.ctx, g.limits.HandshakeTimeout)
	bc, err := g.backends.Dial(dctx, name, client, ModePassthrough)
	cancel()
	if err != nil {
		g.log.Debug("passthrough: no backend", "name", name, "err", err)
		return
	}
	defer bc.Close()
	g.metrics.passConns.WithLabelValues(name).Inc()
	up := make(chan int64, 1)
	go func() {
		n := splice(bc, c)
		up <- n
	}()
	down := splice(c, bc)
	// The backend finished sending; give the client side a moment to
	// finish too, then tear both down.
	var n int64
	select {
	case n = <-up:
	case <-time.After(g.limits.IdleTimeout):
		c.Close()
		bc.Close()
		n = <-up
	}
	g.metrics.bytesIn.WithLabelValues(name).Add(float64(n))
	g.metrics.bytesOut.WithLabelValues(name).Add(float64(down))
}

// splice copies src to dst until src ends, then half-closes dst.
func splice(dst, src net.Conn) int64 {
	buf := copyBufs.Get().(*[]byte)
	n, _ := io.CopyBuffer(dst, struct{ io.Reader }{src}, *buf)
	copyBufs.Put(buf)
	if cw, ok := dst.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	} else {
		dst.Close()
	}
	return n
}
