package zdb

import "fmt"

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
	// requestFraming bounds the count and length lines of a request: at
	// most maxRequestArgs+1 lines of at most 25 bytes.
	requestFraming = (maxRequestArgs + 1) * 25
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
	for len(p) > 0 {
		n, _, err := f.feedRequest(p)
		if err != nil {
			return err
		}
		p = p[n:]
	}
	return nil
}

// feedRequest advances over p up to and including the byte that ends a
// request, if one does: n is the bytes consumed and end tells whether a
// request ended there.
func (f *framer) feedRequest(p []byte) (n int, end bool, err error) {
	for i := 0; i < len(p); i++ {
		c := p[i]
		switch f.state {
		case frStart:
			f.total, f.line = 0, 0
			if c == '*' {
				f.state, f.n = frCount, 0
				continue
			}
			f.state = frInline
			i-- // this byte starts the inline request
		case frInline:
			if c == '\n' {
				f.state = frStart
			} else if f.line++; f.line > maxInlineRequest {
				return i, false, fmt.Errorf("%w: inline request longer than %d bytes", errFraming, maxInlineRequest)
			}
		case frCount, frBulkLen:
			if err := f.number(c); err != nil {
				return i, false, err
			}
		case frBulkHdr:
			if c != '$' {
				return i, false, fmt.Errorf("%w: expected '$'", errFraming)
			}
			f.state, f.n = frBulkLen, 0
		case frBody:
			skip := min(f.body, int64(len(p)-i))
			i += int(skip) - 1
			if f.body -= skip; f.body == 0 {
				f.endArg()
			}
		}
		if f.state == frStart {
			return i + 1, true, nil
		}
	}
	return len(p), false, nil
}

// announced is what the request being read will buffer, as far as its
// framing has told: the argument lengths announced, the inline line so
// far, and room for the count and length lines.
func (f *framer) announced() int64 {
	if f.state == frStart {
		return 0
	}
	return f.total + int64(f.line) + requestFraming
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
