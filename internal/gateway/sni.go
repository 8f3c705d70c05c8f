package gateway

import (
	"bytes"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"time"
)

// maxHelloBytes bounds what the peek reads before giving up: a ClientHello
// with a post-quantum key share is about 2 KiB; TLS allows 16 KiB records.
const maxHelloBytes = 64 << 10

// clientHello is the part of a ClientHello the router needs.
type clientHello struct {
	ServerName string   // SNI, lowercased by crypto/tls; empty when absent
	ALPN       []string // protocols the client offers
}

var errPeeked = errors.New("peeked")

// peekClientHello reads one TLS ClientHello from r with crypto/tls's own
// parser and returns it with every byte it consumed, which the caller must
// replay to whoever handles the connection next. Bytes that are not a
// ClientHello give ErrNotTLS.
func peekClientHello(r io.Reader) (clientHello, []byte, error) {
	var buf bytes.Buffer
	var hello clientHello
	var got bool
	conn := readOnlyConn{r: io.TeeReader(io.LimitReader(r, maxHelloBytes), &buf)}
	err := tls.Server(conn, &tls.Config{
		GetConfigForClient: func(h *tls.ClientHelloInfo) (*tls.Config, error) {
			hello = clientHello{ServerName: h.ServerName, ALPN: append([]string(nil), h.SupportedProtos...)}
			got = true
			return nil, errPeeked
		},
	}).Handshake()
	if !got {
		return clientHello{}, buf.Bytes(), fmt.Errorf("%w: %v", ErrNotTLS, err)
	}
	return hello, buf.Bytes(), nil
}

// readOnlyConn lets tls.Server read a ClientHello and refuses every write
// (the alert tls tries to send when the peek stops it).
type readOnlyConn struct{ r io.Reader }

func (c readOnlyConn) Read(p []byte) (int, error)     { return c.r.Read(p) }
func (readOnlyConn) Write([]byte) (int, error)        { return 0, io.ErrClosedPipe }
func (readOnlyConn) Close() error                     { return nil }
func (readOnlyConn) LocalAddr() net.Addr              { return nil }
func (readOnlyConn) RemoteAddr() net.Addr             { return nil }
func (readOnlyConn) SetDeadline(time.Time) error      { return nil }
func (readOnlyConn) SetReadDeadline(time.Time) error  { return nil }
func (readOnlyConn) SetWriteDeadline(time.Time) error { return nil }

// replayConn is a connection whose first reads return bytes already read
// from it.
type replayConn struct {
	net.Conn
	pre []byte
}

func (c *replayConn) Read(p []byte) (int, error) {
	if len(c.pre) > 0 {
		n := copy(p, c.pre)
		c.pre = c.pre[n:]
		return n, nil
	}
	return c.Conn.Read(p)
}

// CloseWrite half-closes the underlying connection when it can.
func (c *replayConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return c.Conn.Close()
}
