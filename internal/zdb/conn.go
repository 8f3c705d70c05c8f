package zdb

import (
	"errors"
	"fmt"
	"io"
	"net"
	"sync/atomic"
	"time"

	"github.com/tidwall/redcon"
)

// A client connection is served by one goroutine that reads a request,
// runs it and writes its reply. redcon parses the requests; everything
// around it is here, so that no client, authenticated or not, can make the
// server hold more than its limits:
//
//   - Bytes reach redcon one request at a time: the connection reads the
//     socket into a small read-ahead buffer and hands redcon bytes only up
//     to the end of the request being read. A request has been run once
//     redcon asks for more, so at most one request per connection is
//     buffered, and the framer (guard.go) bounds it before it is buffered.
//   - Every byte buffered for a request (as announced by its framing) or a
//     reply (before it is sent) is charged to the connection's budget
//     (ServerConfig.ConnBuffer) and the server's (ServerConfig.MaxBuffer).
//     A request or reply that would pass either ends the connection with an
//     error naming the limit; other connections go on.
//   - Between requests a connection may be silent for IdleTimeout; once a
//     request started, all of it must arrive within RequestTimeout, and a
//     reply must be taken by the client within RequestTimeout.

const (
	readAhead      = 16 << 10 // bytes read from the socket at once, except into a large value
	flushAt        = 64 << 10 // send replies once this many are pending
	replyOverhead  = 64       // RESP framing allowed for one reply value
	freshReaderAt  = 64 << 10 // after a request this large, drop redcon's grown buffer
	refusalTimeout = time.Second
)

// errBudget is why a connection was cut for buffering too much.
var errBudget = errors.New("buffer budget exceeded")

// budget is the server-wide count of buffered bytes.
type budget struct {
	limit int64
	used  atomic.Int64
}

func (b *budget) take(n int64) bool {
	if b.used.Add(n) > b.limit {
		b.used.Add(-n)
		return false
	}
	return true
}

func (b *budget) give(n int64) { b.used.Add(-n) }

// clientConn is one client connection. All fields are used only by the
// goroutine serving it, except nc, which Server.Close closes.
type clientConn struct {
	srv  *Server
	nc   net.Conn
	host string
	sess *session

	fr       framer
	buf      []byte // read-ahead buffer
	ahead    []byte // read from the socket, not yet handed to redcon
	rerr     error  // the socket's error, after the bytes in ahead
	reqStart time.Time
	ended    bool  // the bytes last handed to redcon ended a request
	err      error // the connection is being cut for this

	reqCharge   int64 // charged for the request being read or run
	replyCharge int64 // charged for replies not yet sent

	rd  *redcon.Reader
	wr  *redcon.Writer
	out countingWriter
}

func newClientConn(s *Server, nc net.Conn, host string) *clientConn {
	c := &clientConn{srv: s, nc: nc, host: host, fr: framer{maxRequest: maxRequest}, buf: make([]byte, readAhead)}
	c.rd = redcon.NewReader(c)
	c.wr = redcon.NewWriter(nc)
	c.out.w = c.wr
	c.sess = s.newSession(nc.RemoteAddr().String())
	c.sess.conn = c
	return c
}

// serve runs the connection's requests until it ends, then releases what
// it had charged.
func (c *clientConn) serve() {
	defer func() {
		c.release(c.reqCharge + c.replyCharge)
		c.nc.Close()
	}()
	for {
		cmd, err := c.rd.ReadCommand()
		if err != nil {
			c.readFailed(err)
			return
		}
		c.srv.handle(c.sess, &c.out, cmd.Args)
		if err := c.chargeReply(c.out.n - c.replyCharge); err != nil {
			c.wr.SetBuffer(nil) // the reply is dropped, the connection cut
			c.replyFailed(err)
			return
		}
		if c.sess.closing {
			c.flush()
			return
		}
		if c.out.n >= flushAt || len(c.ahead) == 0 {
			if c.flush() != nil {
				return
			}
		}
		if len(cmd.Raw) > freshReaderAt {
			c.rd = redcon.NewReader(c) // redcon keeps a grown buffer for good
		}
	}
}

// readFailed ends the connection after a read error: a protocol error
// from redcon gets a reply, a cut already sent its own, a closed or
// silent connection gets none.
func (c *clientConn) readFailed(err error) {
	if c.err != nil || errors.Is(err, c.rerr) {
		if c.rerr != nil && !errors.Is(c.rerr, net.ErrClosed) && !isTimeout(c.rerr) {
			c.srv.log.Debug("client connection ended", "remote", c.sess.remote, "err", c.rerr)
		}
		return
	}
	c.wr.WriteError("ERR " + err.Error())
	c.flush()
}

func (c *clientConn) replyFailed(err error) {
	c.srv.log.Warn("connection cut", "remote", c.sess.remote, "err", err)
	c.wr.WriteError("ERR " + err.Error())
	c.flush()
}

// Read hands redcon the next bytes of the stream, never past the end of a
// request. It is redcon's only source, through its bufio.Reader, which
// calls Read only when it is empty.
func (c *clientConn) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	if c.ended { // redcon wants more: the request has been run
		c.ended = false
		c.release(c.reqCharge)
		c.reqCharge = 0
	}
	if len(c.ahead) == 0 && c.fr.state == frBody && c.fr.body > readAhead && len(p) > readAhead {
		// Inside a large argument: read straight into redcon's buffer, at
		// most to the argument's end, so nothing past the request is read.
		n, err := c.read(p[:min(int64(len(p)), c.fr.body)])
		if err != nil {
			return 0, err
		}
		_, end, err := c.fr.feedRequest(p[:n]) // body bytes only: nothing new to charge
		if err != nil {
			return 0, c.cut(err)
		}
		c.ended = end
		return n, nil
	}
	if len(c.ahead) == 0 {
		n, err := c.read(c.buf)
		if err != nil {
			return 0, err
		}
		c.ahead = c.buf[:n]
	}
	if c.fr.state == frStart {
		c.reqStart = time.Now()
	}
	n, end, err := c.fr.feedRequest(c.ahead[:min(len(p), len(c.ahead))])
	if err == nil && (end || c.fr.state != frStart) {
		err = c.chargeRequest(c.fr.total + int64(c.fr.line) + requestFraming)
	}
	if err != nil {
		return 0, c.cut(err)
	}
	copy(p, c.ahead[:n])
	c.ahead = c.ahead[n:]
	c.ended = end
	return n, nil
}

// read reads from the socket into dst, waiting at most IdleTimeout between
// requests and until RequestTimeout after the start of one. Bytes read
// come with a nil error; the socket's error is kept for the next read.
func (c *clientConn) read(dst []byte) (int, error) {
	if c.rerr != nil {
		return 0, c.rerr
	}
	cfg := &c.srv.cfg
	mid := c.fr.state != frStart
	deadline := time.Now().Add(cfg.IdleTimeout)
	if mid {
		deadline = c.reqStart.Add(cfg.RequestTimeout)
	}
	_ = c.nc.SetReadDeadline(deadline)
	n, err := c.nc.Read(dst)
	c.rerr = err
	switch {
	case n > 0:
		return n, nil
	case mid && isTimeout(err):
		c.srv.log.Warn("connection cut: request not complete in time", "remote", c.sess.remote, "timeout", cfg.RequestTimeout)
		return 0, c.cut(fmt.Errorf("request not complete within %v (server flag --request-timeout)", cfg.RequestTimeout))
	case isTimeout(err):
		c.srv.log.Debug("idle connection closed", "remote", c.sess.remote, "timeout", cfg.IdleTimeout)
	}
	if err == nil {
		err = io.ErrNoProgress
	}
	return 0, err
}

// cut ends the connection because of err: the replies pending so far, then
// err as an error reply.
func (c *clientConn) cut(err error) error {
	c.err = err
	if errors.Is(err, errBudget) {
		c.srv.log.Warn("connection cut", "remote", c.sess.remote, "err", err)
	}
	_ = c.nc.SetWriteDeadline(time.Now().Add(refusalTimeout))
	c.wr.WriteError("ERR " + err.Error())
	_ = c.wr.Flush()
	return err
}

// flush sends the pending replies; a client has RequestTimeout to take
// them.
func (c *clientConn) flush() error {
	_ = c.nc.SetWriteDeadline(time.Now().Add(c.srv.cfg.RequestTimeout))
	err := c.wr.Flush()
	c.release(c.replyCharge)
	c.replyCharge, c.out.n = 0, 0
	return err
}

// chargeRequest raises the request's charge to need bytes.
func (c *clientConn) chargeRequest(need int64) error {
	if need <= c.reqCharge {
		return nil
	}
	if err := c.charge(need-c.reqCharge, "request", need); err != nil {
		return err
	}
	c.reqCharge = need
	return nil
}

// chargeReply charges n more bytes of replies.
func (c *clientConn) chargeReply(n int64) error {
	if n <= 0 {
		return nil
	}
	if err := c.charge(n, "reply", c.replyCharge+n); err != nil {
		return err
	}
	c.replyCharge += n
	return nil
}

func (c *clientConn) charge(n int64, what string, size int64) error {
	cfg := &c.srv.cfg
	if c.reqCharge+c.replyCharge+n > cfg.ConnBuffer {
		return fmt.Errorf("%w: %s of %d bytes is over this connection's budget of %d bytes (server flag --conn-buffer)",
			errBudget, what, size, cfg.ConnBuffer)
	}
	if !c.srv.buffered.take(n) {
		return fmt.Errorf("%w: the server's budget of %d buffered bytes is in use (server flag --max-buffer); try again later",
			errBudget, cfg.MaxBuffer)
	}
	return nil
}

func (c *clientConn) release(n int64) { c.srv.buffered.give(n) }

// reserveReply charges a reply of n bytes before it is made (GET, before
// it reads the value), so a value never enters memory over the budgets.
func (c *session) reserveReply(n int64) error {
	if c.conn == nil {
		return nil
	}
	if err := c.conn.chargeReply(n); err != nil {
		c.closing = true
		return err
	}
	return nil
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// countingWriter counts the bytes of the replies written through it (an
// upper bound of their RESP encoding).
type countingWriter struct {
	w *redcon.Writer
	n int64
}

func (c *countingWriter) WriteError(msg string) {
	c.n += int64(len(msg)) + replyOverhead
	c.w.WriteError(msg)
}

func (c *countingWriter) WriteString(str string) {
	c.n += int64(len(str)) + replyOverhead
	c.w.WriteString(str)
}

func (c *countingWriter) WriteBulk(bulk []byte) {
	c.n += int64(len(bulk)) + replyOverhead
	c.w.WriteBulk(bulk)
}

func (c *countingWriter) WriteBulkString(bulk string) {
	c.n += int64(len(bulk)) + replyOverhead
	c.w.WriteBulkString(bulk)
}

func (c *countingWriter) WriteInt64(num int64) {
	c.n += replyOverhead
	c.w.WriteInt64(num)
}

func (c *countingWriter) WriteArray(count int) {
	c.n += replyOverhead
	c.w.WriteArray(count)
}

func (c *countingWriter) WriteNull() {
	c.n += replyOverhead
	c.w.WriteNull()
}
