package gateway

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"strings"
	"sync"
	"time"

	"golang.org/x/net/http/httpguts"
)

// The HTTP/1.1 path of terminate mode. A client connection that did not
// negotiate h2 is served here, in its own goroutine, without net/http's
// server, ReverseProxy or Transport: the standard library parses every
// message (http.ReadRequest, http.ReadResponse) and this file writes them
// again with framing of its own, so what reaches the backend is always
// one unambiguous message whatever the client sent. A request takes an
// idle tunnel stream of its name from a pool, writes the request, reads
// the response and copies it to the client, and puts the stream back
// when both messages were complete. h2 clients keep net/http's server and
// the ReverseProxy (proxy.go).

const (
	maxIdleStreamsPerName = 512
	streamIdleTimeout     = 90 * time.Second
	probeAfter            = 100 * time.Millisecond
	max1xx                = 5         // informational responses skipped per request
	maxDrain              = 256 << 10 // unread request body drained to keep a client connection
)

// backendConn is a tunnel stream that carries HTTP/1.1 to a backend.
type backendConn struct {
	net.Conn
	name string
	br   *bufio.Reader
	bw   *bufio.Writer
	idle time.Time // when it went back to the pool
}

// alive reports whether a pooled stream may still carry a request: not
// idle too long, not ended on our side, and not ended by the backend
// (whose origin may have closed its idle connection): a read that must
// not wait finds nothing rather than the end of the stream or stray
// bytes. That read is skipped for a stream idle less than probeAfter:
// origins close idle connections after seconds, and a busy gateway
// reuses streams within microseconds.
func (bc *backendConn) alive(now time.Time) bool {
	idle := now.Sub(bc.idle)
	if idle > streamIdleTimeout {
		return false
	}
	if c, ok := bc.Conn.(interface{ Context() context.Context }); ok && c.Context().Err() != nil {
		return false
	}
	if bc.br.Buffered() > 0 {
		return false
	}
	if idle < probeAfter {
		return true
	}
	bc.SetReadDeadline(aLongTimeAgo)
	_, err := bc.br.Peek(1)
	bc.SetReadDeadline(time.Time{})
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// aLongTimeAgo is a deadline already past: reads return at once.
var aLongTimeAgo = time.Unix(1, 0)

// streamPool keeps idle backend streams per name, newest first, and the
// streams in use so that Close can end requests in flight.
type streamPool struct {
	mu     sync.Mutex
	idle   map[string][]*backendConn
	active map[*backendConn]struct{}
	closed bool
}

func newStreamPool() *streamPool {
	return &streamPool{idle: make(map[string][]*backendConn), active: make(map[*backendConn]struct{})}
}

// get returns a live idle stream of name marked in use, or nil.
func (p *streamPool) get(name string, now time.Time) *backendConn {
	for {
		p.mu.Lock()
		list := p.idle[name]
		if len(list) == 0 {
			p.mu.Unlock()
			return nil
		}
		bc := list[len(list)-1]
		list[len(list)-1] = nil
		p.idle[name] = list[:len(list)-1]
		p.active[bc] = struct{}{}
		p.mu.Unlock()
		if bc.alive(now) {
			return bc
		}
		p.release(bc, false, now)
	}
}

// prune closes streams idle for longer than streamIdleTimeout; the
// oldest are first in each list.
func (p *streamPool) prune(now time.Time) {
	var old []*backendConn
	p.mu.Lock()
	for name, list := range p.idle {
		n := 0
		for n < len(list) && now.Sub(list[n].idle) > streamIdleTimeout {
			n++
		}
		old = append(old, list[:n]...)
		if n == len(list) {
			delete(p.idle, name)
		} else {
			p.idle[name] = append(list[:0:0], list[n:]...)
		}
	}
	p.mu.Unlock()
	for _, bc := range old {
		bc.Close()
	}
}

// track marks a new stream in use; false when the pool is closed.
func (p *streamPool) track(bc *backendConn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.active[bc] = struct{}{}
	return true
}

// release ends a stream's use: back to the pool when reuse is true and
// there is room, closed otherwise.
func (p *streamPool) release(bc *backendConn, reuse bool, now time.Time) {
	p.mu.Lock()
	delete(p.active, bc)
	if reuse && !p.closed && len(p.idle[bc.name]) < maxIdleStreamsPerName {
		bc.idle = now
		p.idle[bc.name] = append(p.idle[bc.name], bc)
		p.mu.Unlock()
		return
	}
	p.mu.Unlock()
	bc.Close()
}

// closeAll closes every stream, idle or in use, and refuses new ones.
func (p *streamPool) closeAll() {
	p.mu.Lock()
	p.closed = true
	var all []*backendConn
	for _, list := range p.idle {
		all = append(all, list...)
	}
	for bc := range p.active {
		all = append(all, bc)
	}
	p.idle, p.active = map[string][]*backendConn{}, map[*backendConn]struct{}{}
	p.mu.Unlock()
	for _, bc := range all {
		bc.Close()
	}
}

// h1conn is one client connection on the HTTP/1.1 path.
type h1conn struct {
	g      *Gateway
	tc     *tls.Conn
	client netip.AddrPort
	lim    *limitReader
	br     *bufio.Reader
	bw     *bufio.Writer

	mu   sync.Mutex // guards idle against Shutdown's kick
	idle bool
}

// limitReader bounds how much a request's line and headers may read.
type limitReader struct {
	r io.Reader
	n int64
}

func (l *limitReader) Read(p []byte) (int, error) {
	if l.n <= 0 {
		return 0, errHeaderTooLarge
	}
	if int64(len(p)) > l.n {
		p = p[:l.n]
	}
	n, err := l.r.Read(p)
	l.n -= int64(n)
	return n, err
}

var errHeaderTooLarge = errors.New("request header too large")

var (
	clientReaders = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}
	clientWriters = sync.Pool{New: func() any { return bufio.NewWriterSize(nil, 4<<10) }}
)

// serveH1 serves requests on a terminated client connection until the
// client or the gateway ends it.
func (g *Gateway) serveH1(tc *tls.Conn, client netip.AddrPort) {
	c := &h1conn{g: g, tc: tc, client: client, lim: &limitReader{r: tc}}
	c.br = clientReaders.Get().(*bufio.Reader)
	c.br.Reset(c.lim)
	c.bw = clientWriters.Get().(*bufio.Writer)
	c.bw.Reset(tc)
	g.mu.Lock()
	g.h1[c] = struct{}{}
	g.mu.Unlock()
	defer func() {
		g.mu.Lock()
		delete(g.h1, c)
		g.mu.Unlock()
		tc.Close()
		c.br.Reset(nil)
		clientReaders.Put(c.br)
		c.bw.Reset(nil)
		clientWriters.Put(c.bw)
	}()
	for {
		if !c.setIdle(true) {
			return
		}
		c.lim.n = int64(g.limits.MaxHeaderBytes) + 4096 // bufio's slack, as net/http allows
		tc.SetReadDeadline(time.Now().Add(g.limits.IdleTimeout))
		if _, err := c.br.Peek(1); err != nil {
			return
		}
		c.setIdle(false)
		tc.SetReadDeadline(time.Now().Add(g.limits.ReadHeaderTimeout))
		req, err := http.ReadRequest(c.br)
		if err != nil {
			c.fail(err)
			return
		}
		tc.SetReadDeadline(time.Time{})
		c.lim.n = 1 << 62 // the body is bounded by its framing
		if !c.serve(req) {
			return
		}
	}
}

// setIdle marks the connection idle (waiting for a request) or busy; it
// returns false when the gateway is shutting down.
func (c *h1conn) setIdle(idle bool) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.idle = idle
	return !idle || !c.g.isClosed()
}

// kickIdle makes an idle connection's wait for a request end now.
func (c *h1conn) kickIdle() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.idle {
		c.tc.SetReadDeadline(time.Now())
	}
}

// fail answers a request that could not be read, when there is one.
func (c *h1conn) fail(err error) {
	var ne net.Error
	switch {
	case errors.Is(err, io.EOF), errors.Is(err, net.ErrClosed), errors.As(err, &ne) && ne.Timeout():
		return
	case errors.Is(err, errHeaderTooLarge):
		c.plain(http.StatusRequestHeaderFieldsTooLarge, true)
	case strings.Contains(err.Error(), "unsupported transfer encoding"): // net/http's text; it has no sentinel
		c.plain(http.StatusNotImplemented, true)
	default:
		c.plain(http.StatusBadRequest, true)
	}
}

// plain writes a response of the status and its text only.
func (c *h1conn) plain(code int, closeAfter bool) {
	text := plainBody(code)
	c.bw.WriteString("HTTP/1.1 " + strconv.Itoa(code) + " " + http.StatusText(code) + "\r\n" +
		"Content-Type: text/plain; charset=utf-8\r\nX-Content-Type-Options: nosniff\r\n" +
		"Content-Length: " + strconv.Itoa(len(text)) + "\r\n")
	if closeAfter {
		c.bw.WriteString("Connection: close\r\n")
	}
	c.bw.WriteString("\r\n" + text)
	if c.flush() == nil && closeAfter {
		c.linger()
	}
}

// linger ends a connection whose client may still be sending (an error
// answered before its request was read): the write side is closed and
// what arrives is read and dropped for a moment, so the kernel does not
// reset the connection and lose the answer before the client reads it.
func (c *h1conn) linger() {
	raw := c.tc.NetConn()
	c.tc.CloseWrite()
	if cw, ok := raw.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	raw.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
	io.Copy(io.Discard, io.LimitReader(raw, maxDrain))
}

// serve proxies one request and reports whether the connection may carry
// another.
func (c *h1conn) serve(req *http.Request) (keep bool) {
	start := time.Now()
	g := c.g
	closeAfter := req.Close || !req.ProtoAtLeast(1, 1)
	if req.ProtoAtLeast(1, 1) && req.Host == "" {
		c.plain(http.StatusBadRequest, true)
		return false
	}
	name, routable := g.route(req.Host)
	if req.Method == http.MethodConnect {
		c.plain(http.StatusMethodNotAllowed, true)
		return false
	}
	body := req.Body != nil && req.Body != http.NoBody
	if !routable {
		g.metrics.requests.WithLabelValues(unroutedName, "404").Inc()
		// A body is drained (up to maxDrain) to keep the connection; one
		// the client holds back for a 100 Continue is not.
		closeNow := closeAfter || body && (req.Header.Get("Expect") != "" || !c.drain(req.Body))
		c.plain(http.StatusNotFound, closeNow)
		return !closeNow
	}
	m := g.metrics.forName(name)
	if e := req.Header.Get("Expect"); e != "" {
		if !strings.EqualFold(e, "100-continue") {
			m.request(http.StatusExpectationFailed)
			c.plain(http.StatusExpectationFailed, true)
			return false
		}
		if body {
			c.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
			if c.flush() != nil {
				return false
			}
		}
	}
	var counted *countingBody
	if body {
		counted = &countingBody{ReadCloser: req.Body}
		req.Body = counted
	}
	upgrade := upgradeType(req.Header)
	bc, resp, sent, err := c.roundTrip(name, req, upgrade)
	if err != nil {
		g.log.Debug("backend failed", "name", name, "err", err)
		m.request(http.StatusBadGateway)
		c.plain(http.StatusBadGateway, true)
		return false
	}
	var code int
	var n int64
	if resp.StatusCode == http.StatusSwitchingProtocols {
		code = resp.StatusCode
		if upgrade == "" || !strings.EqualFold(upgradeType(resp.Header), upgrade) {
			g.log.Debug("backend switched protocols unasked", "name", name)
			g.pool.release(bc, false, time.Now())
			m.request(http.StatusBadGateway)
			c.plain(http.StatusBadGateway, true)
			return false
		}
		n = c.upgrade(bc, resp, upgrade)
		keep = false
	} else {
		code = resp.StatusCode
		var clean bool
		n, clean = writeResponse(c.bw, c.flush, req, resp, bc.br, closeAfter)
		// The backend stream is reusable when both messages were whole.
		if done, reqErr := requestSent(sent, counted); done {
			g.pool.release(bc, clean && reqErr == nil && !resp.Close, time.Now())
			keep = clean && !closeAfter && (!body || c.drain(req.Body))
		} else {
			// The backend answered before it took the whole body: the
			// rest is not read, and neither connection is used again.
			g.pool.release(bc, false, time.Now())
			c.stopBody(sent)
			keep = false
		}
	}
	m.request(code)
	m.bytesOut.Add(float64(n))
	if counted != nil {
		m.bytesIn.Add(float64(counted.n))
	}
	m.latency.Observe(time.Since(start).Seconds())
	return keep
}

// requestSent reports the outcome of writing a request once the response
// is done: at once when the writer has finished, after a short wait when
// the client's whole body was read and only its last bytes to the backend
// may be pending, and done=false when the writer is still reading the
// client's body.
func requestSent(sent <-chan error, body *countingBody) (done bool, err error) {
	select {
	case err := <-sent:
		return true, err
	default:
	}
	if body == nil || !body.eof.Load() {
		return false, nil
	}
	t := time.NewTimer(time.Second)
	defer t.Stop()
	select {
	case err := <-sent:
		return true, err
	case <-t.C:
		return false, nil
	}
}

// stopBody waits for the writer of a request body to end, cutting its
// reads from the client short when it has not ended by itself (its
// stream is closed already); the client connection is not read again.
func (c *h1conn) stopBody(sent <-chan error) {
	select {
	case <-sent:
		return
	default:
	}
	c.tc.SetReadDeadline(aLongTimeAgo)
	<-sent
}

// drain reads what is left of a request body so that the next request
// can be read; false when it is too long or fails.
func (c *h1conn) drain(body io.ReadCloser) bool {
	n, err := io.Copy(io.Discard, io.LimitReader(body, maxDrain+1))
	return err == nil && n <= maxDrain
}

// roundTrip sends req on a pooled or new stream of name and reads the
// response head. sent yields the outcome of writing the request (its
// body may still be going when the response comes). A replayable request
// is tried again, up to three times in all, when a stream failed before
// any response came back: a backend that died takes its pooled streams
// with it.
func (c *h1conn) roundTrip(name string, req *http.Request, upgrade string) (*backendConn, *http.Response, <-chan error, error) {
	var errs []error
	for attempt := 0; attempt < 3; attempt++ {
		bc, err := c.stream(name)
		if err != nil {
			return nil, nil, nil, errors.Join(append(errs, err)...)
		}
		sent := make(chan error, 1)
		if req.Body != nil && req.Body != http.NoBody {
			// The body goes while the response is awaited: a backend
			// may answer before reading it all.
			go func() { sent <- writeRequest(bc.bw, req, c.client.Addr(), upgrade) }()
		} else {
			sent <- writeRequest(bc.bw, req, c.client.Addr(), upgrade)
		}
		resp, err := readResponse(bc.br, req)
		if err == nil {
			return bc, resp, sent, nil
		}
		c.g.pool.release(bc, false, time.Now())
		c.stopBody(sent)
		errs = append(errs, err)
		if !replayable(req) || c.g.ctx.Err() != nil {
			break
		}
	}
	return nil, nil, nil, errors.Join(errs...)
}

// stream takes an idle stream of name or opens a new one.
func (c *h1conn) stream(name string) (*backendConn, error) {
	g := c.g
	if bc := g.pool.get(name, time.Now()); bc != nil {
		return bc, nil
	}
	ctx, cancel := context.WithTimeout(g.ctx, g.limits.HandshakeTimeout)
	conn, err := g.backends.Dial(ctx, name, c.client, ModeHTTP)
	cancel()
	if err != nil {
		return nil, err
	}
	bc := &backendConn{Conn: conn, name: name, br: bufio.NewReaderSize(conn, 16<<10), bw: bufio.NewWriterSize(conn, 4<<10)}
	if !g.pool.track(bc) {
		conn.Close()
		return nil, ErrClosed
	}
	return bc, nil
}

// readResponse reads the backend's final response head, skipping
// informational ones other than 101.
func readResponse(br *bufio.Reader, req *http.Request) (*http.Response, error) {
	for range max1xx + 1 {
		resp, err := http.ReadResponse(br, req)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode >= 200 || resp.StatusCode == http.StatusSwitchingProtocols {
			return resp, nil
		}
	}
	return nil, errors.New("backend sent too many informational responses")
}

// hopHeaders are meaningful for one connection only and never forwarded
// (RFC 9110, 7.6.1); the framing headers are written anew.
var hopHeaders = map[string]bool{
	"Connection": true, "Proxy-Connection": true, "Keep-Alive": true, "Proxy-Authenticate": true,
	"Proxy-Authorization": true, "Te": true, "Trailer": true, "Transfer-Encoding": true, "Upgrade": true,
	"Content-Length": true, "Expect": true,
}

// connectionTokens are the field names the Connection header lists.
func connectionTokens(h http.Header) []string {
	var toks []string
	for _, v := range h["Connection"] {
		for tok := range strings.SplitSeq(v, ",") {
			if tok = strings.TrimSpace(tok); tok != "" {
				toks = append(toks, tok)
			}
		}
	}
	return toks
}

// connectionListed reports whether the Connection header names key.
func connectionListed(h http.Header, key string) bool {
	return listedIn(connectionTokens(h), key)
}

func listedIn(toks []string, key string) bool {
	for _, t := range toks {
		if strings.EqualFold(t, key) {
			return true
		}
	}
	return false
}

// writeHeaders writes the end-to-end fields of h, skipping any that could
// not be written back safely and those drop names (when drop is set).
func writeHeaders(w *bufio.Writer, h http.Header, drop func(string) bool) {
	listed := connectionTokens(h) // read once, not per field
	for k, vs := range h {
		if hopHeaders[k] || drop != nil && drop(k) || !httpguts.ValidHeaderFieldName(k) || listedIn(listed, k) {
			continue
		}
		for _, v := range vs {
			if !httpguts.ValidHeaderFieldValue(v) {
				continue
			}
			w.WriteString(k)
			w.WriteString(": ")
			w.WriteString(v)
			w.WriteString("\r\n")
		}
	}
}

// writeRequest writes req to the backend as HTTP/1.1 under the header
// policy (headers.go) with framing of its own, then the body, and
// flushes.
func writeRequest(w *bufio.Writer, req *http.Request, client netip.Addr, upgrade string) error {
	w.WriteString(req.Method)
	w.WriteByte(' ')
	w.WriteString(req.URL.RequestURI())
	w.WriteString(" HTTP/1.1\r\nHost: ")
	w.WriteString(req.Host)
	w.WriteString("\r\n")
	writeHeaders(w, req.Header, gatewayOwned)
	if _, ok := req.Header["User-Agent"]; !ok {
		w.WriteString("User-Agent:\r\n") // not Go's default
	}
	for _, f := range forwarded(client, req.Host) {
		w.WriteString(f[0])
		w.WriteString(": ")
		w.WriteString(f[1])
		w.WriteString("\r\n")
	}
	if upgrade != "" {
		w.WriteString("Connection: Upgrade\r\nUpgrade: ")
		w.WriteString(req.Header.Get("Upgrade"))
		w.WriteString("\r\n")
	}
	body := req.Body != nil && req.Body != http.NoBody
	switch {
	case body && req.ContentLength > 0:
		w.WriteString("Content-Length: ")
		w.WriteString(strconv.FormatInt(req.ContentLength, 10))
		w.WriteString("\r\n\r\n")
		if _, err := io.CopyN(w, req.Body, req.ContentLength); err != nil {
			return err
		}
	case body:
		w.WriteString("Transfer-Encoding: chunked\r\n\r\n")
		cw := httputil.NewChunkedWriter(w)
		if err := copyFlushing(cw, w, req.Body); err != nil {
			return err
		}
		cw.Close()
		w.WriteString("\r\n") // no trailers
	default:
		if req.Method == http.MethodPost || req.Method == http.MethodPut || req.Method == http.MethodPatch {
			w.WriteString("Content-Length: 0\r\n")
		}
		w.WriteString("\r\n")
	}
	return w.Flush()
}

// copyFlushing copies src to dst (which writes into bw) and flushes bw
// whenever src has nothing more at hand, so streamed bodies are not held.
func copyFlushing(dst io.Writer, bw *bufio.Writer, src io.Reader) error {
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	for {
		n, err := src.Read(*buf)
		if n > 0 {
			if _, werr := dst.Write((*buf)[:n]); werr != nil {
				return werr
			}
			if werr := bw.Flush(); werr != nil {
				return werr
			}
		}
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return err
		}
	}
}

// upgradeType is the protocol an Upgrade asks for or grants, when the
// Connection header says so.
func upgradeType(h http.Header) string {
	if !connectionListed(h, "Upgrade") {
		return ""
	}
	return h.Get("Upgrade")
}

// flush sends what the client's writer holds; a client that takes
// nothing for the idle timeout is given up.
func (c *h1conn) flush() error {
	c.tc.SetWriteDeadline(time.Now().Add(c.g.limits.IdleTimeout))
	err := c.bw.Flush()
	c.tc.SetWriteDeadline(time.Time{})
	return err
}

// writeResponse writes the backend's response into w with framing of its
// own, calling flush whenever the backend has nothing more at hand (so
// streamed responses flow) and at the end. It returns the body bytes
// written and whether both sides ended cleanly (the backend's message was
// whole, the client took it, and the client connection may go on).
func writeResponse(w *bufio.Writer, flush func() error, req *http.Request, resp *http.Response, from *bufio.Reader, closeAfter bool) (int64, bool) {
	defer resp.Body.Close()
	code := resp.StatusCode
	w.WriteString("HTTP/1.1 ")
	w.WriteString(strconv.Itoa(code))
	w.WriteByte(' ')
	if text := http.StatusText(code); text != "" {
		w.WriteString(text)
	} else {
		w.WriteString("status code " + strconv.Itoa(code))
	}
	w.WriteString("\r\n")
	writeHeaders(w, resp.Header, nil)
	noBody := req.Method == http.MethodHead || code == http.StatusNoContent || code == http.StatusNotModified
	chunked := false
	switch {
	case noBody:
		if req.Method == http.MethodHead && resp.ContentLength >= 0 {
			w.WriteString("Content-Length: " + strconv.FormatInt(resp.ContentLength, 10) + "\r\n")
		}
	case resp.ContentLength >= 0:
		w.WriteString("Content-Length: " + strconv.FormatInt(resp.ContentLength, 10) + "\r\n")
	case req.ProtoAtLeast(1, 1):
		chunked = true
		w.WriteString("Transfer-Encoding: chunked\r\n")
	default:
		closeAfter = true // an HTTP/1.0 client reads to the close
	}
	if closeAfter {
		w.WriteString("Connection: close\r\n")
	}
	w.WriteString("\r\n")
	if noBody {
		return 0, flush() == nil && !closeAfter
	}
	var dst io.Writer = w
	var cw io.WriteCloser
	if chunked {
		cw = httputil.NewChunkedWriter(w)
		dst = cw
	}
	n, err := copyResponse(dst, w, flush, resp.Body, from)
	if err != nil {
		return n, false
	}
	if chunked {
		cw.Close()
		for k, vs := range resp.Trailer {
			if !httpguts.ValidHeaderFieldName(k) {
				continue
			}
			for _, v := range vs {
				if httpguts.ValidHeaderFieldValue(v) {
					w.WriteString(k + ": " + v + "\r\n")
				}
			}
		}
		w.WriteString("\r\n")
	}
	return n, flush() == nil && !closeAfter
}

// copyResponse copies a response body into dst (which writes into w),
// flushing whenever the backend's reader has nothing more buffered.
func copyResponse(dst io.Writer, w *bufio.Writer, flush func() error, body io.Reader, from *bufio.Reader) (int64, error) {
	buf := copyBufs.Get().(*[]byte)
	defer copyBufs.Put(buf)
	var total int64
	for {
		n, err := body.Read(*buf)
		if n > 0 {
			if _, werr := dst.Write((*buf)[:n]); werr != nil {
				return total, werr
			}
			total += int64(n)
		}
		if err == io.EOF {
			return total, nil
		}
		if err != nil {
			return total, fmt.Errorf("backend response body: %w", err)
		}
		if n > 0 && from.Buffered() == 0 && w.Buffered() > 0 {
			if werr := flush(); werr != nil {
				return total, werr
			}
		}
	}
}

// upgrade completes a protocol switch (WebSocket): the 101 goes to the
// client, then bytes flow both ways until both sides are done. It
// returns the bytes sent to the client.
func (c *h1conn) upgrade(bc *backendConn, resp *http.Response, proto string) int64 {
	g := c.g
	defer g.pool.release(bc, false, time.Now())
	w := c.bw
	w.WriteString("HTTP/1.1 101 Switching Protocols\r\n")
	writeHeaders(w, resp.Header, nil)
	w.WriteString("Connection: Upgrade\r\nUpgrade: " + proto + "\r\n\r\n")
	if c.flush() != nil {
		return 0
	}
	up := make(chan struct{})
	go func() {
		defer close(up)
		io.Copy(bc.Conn, c.br) // what the client sent after its request is buffered in br
		if cw, ok := bc.Conn.(interface{ CloseWrite() error }); ok {
			cw.CloseWrite()
		} else {
			bc.Close()
		}
	}()
	n, _ := io.Copy(c.tc, bc.br)
	c.tc.CloseWrite()
	select {
	case <-up:
	case <-time.After(g.limits.IdleTimeout):
	}
	c.tc.Close()
	bc.Close()
	<-up
	return n
}
