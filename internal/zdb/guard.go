package zdb

import (
	"fmt"
	"net"
	"time"
)

// redcon parses the protocol. Its reader, though, trusts the sizes a client
// announces: a multi-bulk count of 10^18 makes it loop for years, and a
// huge bulk length makes it grow its buffer without end. The guard below
// follows only the framing (counts and lengths, never the content) of the
// byte stream as the connection delivers it, and ends the connection as
// soon as a request announces more than the limits. Everything it lets
// through is still parsed by redcon.
const (
	maxRequestArgs   = 64
	maxInlineRequest = 64 << 10
	// maxRequest bounds the sum of a request's argument lengths: room for
	// SET with the largest key and value, and a timestamp.
	maxRequest = MaxValueSize + 1024
)

// Framing states.
const (
	frStart   = iota // before a request
	frInline         // inside an inline (telnet-style) request line
	frCount          // after '*': reading the argument count
	frBulkHdr        // expecting '$'
	frBulkLen        // after '$': reading the length
	frBody           // inside an argument and its CRLF
)

// framer tracks where the stream is in the RESP framing of requests.
type framer struct {
	maxRequest int64
	state      int
	n          int64 // count or length being read
	total      int64 // argument bytes of the current request so far
	args       int64 // arguments left in the current request
	body       int64 // bytes left of the current argument, CRLF included
	line       int   // length of the current inline request
}

// feed advances over p and fails when a request breaks the limits or the
// framing, which redcon would reject anyway.
func (f *framer) feed(p []byte) error {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch f.state {
		case frStart:
			if c == '*' {
				f.state, f.n, f.total = frCount, 0, 0
				continue
			}
			f.state, f.line = frInline, 0
			i-- // this byte starts the inline request
		case frInline:
			if c == '\n' {
				f.state = frStart
			} else if f.line++; f.line > maxInlineRequest {
				return fmt.Errorf("%w: inline request longer than %d bytes", errFraming, maxInlineRequest)
			}
		case frCount, frBulkLen:
			if err := f.number(c); err != nil {
				return err
			}
		case frBulkHdr:
			if c != '$' {
				return fmt.Errorf("%w: expected '$'", errFraming)
			}
			f.state, f.n = frBulkLen, 0
		case frBody:
			skip := min(f.body, int64(len(p)-i))
			i += int(skip) - 1
			if f.body -= skip; f.body == 0 {
				f.endArg()
			}
		}
	}
	return nil
}

// number reads one byte of a count or length line.
func (f *framer) number(c byte) error {
	limit, what := int64(maxRequestArgs), "arguments"
	if f.state == frBulkLen {
		limit, what = f.maxRequest-f.total, "bytes in a request"
	}
	switch {
	case c >= '0' && c <= '9':
		if f.n = f.n*10 + int64(c-'0'); f.n > limit {
			if f.state == frBulkLen {
				limit = f.maxRequest
			}
			return fmt.Errorf("%w: more than %d %s", errFraming, limit, what)
		}
	case c == '\r':
	case c == '\n' && f.state == frCount:
		f.args, f.state = f.n, frBulkHdr
		if f.n == 0 {
			f.state = frStart
		}
	case c == '\n':
		f.body, f.state = f.n+2, frBody
		f.total += f.n
	default:
		return fmt.Errorf("%w: bad character in a length", errFraming)
	}
	return nil
}

func (f *framer) endArg() {
	if f.args--; f.args > 0 {
		f.state = frBulkHdr
	} else {
		f.state = frStart
	}
}

// guardConn runs every byte read through a framer.
type guardConn struct {
	net.Conn
	fr  framer
	err error
}

func (c *guardConn) Read(p []byte) (int, error) {
	if c.err != nil {
		return 0, c.err
	}
	n, err := c.Conn.Read(p)
	if ferr := c.fr.feed(p[:n]); ferr != nil {
		c.err = ferr
		// Tell the client why; redcon flushed its replies before reading.
		_ = c.Conn.SetWriteDeadline(time.Now().Add(time.Second))
		_, _ = c.Conn.Write([]byte("-ERR " + ferr.Error() + "\r\n"))
		return 0, ferr
	}
	return n, err
}

// guardListener hands out guarded connections.
type guardListener struct {
	net.Listener
	maxRequest int64
}

func (l *guardListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &guardConn{Conn: c, fr: framer{maxRequest: l.maxRequest}}, nil
}
