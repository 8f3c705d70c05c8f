package gateway

import (
	"bufio"
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httputil"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

type clientAddrKey struct{}

// newProxy is the reverse proxy of terminate mode: HTTP/1.1 to the
// backend over a tunnel stream of the name in the outbound URL's host.
func newProxy(g *Gateway) *httputil.ReverseProxy {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, addr string) (net.Conn, error) {
			name, _, err := net.SplitHostPort(addr)
			if err != nil {
				return nil, err
			}
			client, _ := ctx.Value(clientAddrKey{}).(netip.AddrPort)
			return g.backends.Dial(ctx, name, client, ModeHTTP)
		},
		MaxIdleConns:           4096,
		MaxIdleConnsPerHost:    512,
		IdleConnTimeout:        90 * time.Second,
		DisableCompression:     true, // pass the backend's encoding through
		MaxResponseHeaderBytes: 1 << 20,
		ExpectContinueTimeout:  time.Second,
	}
	return &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.Out.URL.Scheme = "http"
			pr.Out.URL.Host = pr.In.Context().Value(routeKey{}).(string)
			pr.Out.Host = pr.In.Host
			// The header policy (headers.go), as the HTTP/1.1 path
			// applies it.
			dropGatewayOwned(pr.Out.Header)
			client, _ := pr.In.Context().Value(clientAddrKey{}).(netip.AddrPort)
			setForwarded(pr.Out.Header, client.Addr(), pr.In.Host)
		},
		Transport:  retryTransport{tr},
		BufferPool: bufferPool{},
		ErrorLog:   nil,
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			g.log.Debug("backend failed", "name", r.Context().Value(routeKey{}), "err", err)
			plainError(w, http.StatusBadGateway)
		},
	}
}

type routeKey struct{}

// retryTransport sends a replayable request again, up to three times in
// all, when a backend stream failed before any response came back: a
// backend that died takes its tunnel's pooled streams with it, and the
// next Dial picks another backend once the tunnel server noticed the loss.
type retryTransport struct{ rt http.RoundTripper }

func (t retryTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(r)
	for attempt := 1; err != nil && attempt < 3 && replayable(r) && r.Context().Err() == nil; attempt++ {
		resp, err = t.rt.RoundTrip(r)
	}
	return resp, err
}

// replayable reports whether sending r twice cannot do harm: an
// idempotent method and no body.
func replayable(r *http.Request) bool {
	switch r.Method {
	case http.MethodGet, http.MethodHead, http.MethodOptions, http.MethodTrace:
		return r.Body == nil || r.Body == http.NoBody
	}
	return false
}

// plainError answers with the status and its standard text only: no
// server banner, no name, no detail.
func plainError(w http.ResponseWriter, code int) {
	h := w.Header()
	for k := range h {
		delete(h, k)
	}
	h.Set("Content-Type", "text/plain; charset=utf-8")
	h.Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(code)
	io.WriteString(w, plainBody(code))
}

// plainBody is the whole body of an error answer: the status and its
// standard text.
func plainBody(code int) string { return strconv.Itoa(code) + " " + http.StatusText(code) + "\n" }

// route maps a request's Host to the name it addresses; ok only for a
// name with a live backend in terminate mode.
func (g *Gateway) route(hostport string) (name string, ok bool) {
	host := hostport
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	name, ok = g.nameOf(host)
	if !ok || name == "" {
		return "", false
	}
	mode, live := g.backends.Mode(name)
	return name, live && mode == ModeHTTP
}

// ServeHTTP routes a terminated request by its Host to the name's
// backends.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	name, ok := g.route(r.Host)
	if !ok {
		g.metrics.requests.WithLabelValues(unroutedName, "404").Inc()
		plainError(w, http.StatusNotFound)
		return
	}
	sw := &statsWriter{ResponseWriter: w, g: g}
	var body *countingBody
	if r.Body != nil && r.Body != http.NoBody {
		body = &countingBody{ReadCloser: r.Body}
		r.Body = body
	}
	ctx := context.WithValue(r.Context(), routeKey{}, name)
	client, _ := netip.ParseAddrPort(r.RemoteAddr)
	ctx = context.WithValue(ctx, clientAddrKey{}, client)
	g.proxy.ServeHTTP(sw, r.WithContext(ctx))

	code := sw.code
	if code == 0 {
		code = http.StatusOK
		if sw.hijacked {
			code = http.StatusSwitchingProtocols
		}
	}
	m := g.metrics.forName(name)
	m.request(code)
	m.bytesOut.Add(float64(sw.n))
	if body != nil {
		m.bytesIn.Add(float64(body.n))
	}
	m.latency.Observe(time.Since(start).Seconds())
}

// statsWriter records the status and body size of a response.
type statsWriter struct {
	http.ResponseWriter
	g        *Gateway
	code     int
	n        int64
	hijacked bool
}

func (w *statsWriter) WriteHeader(code int) {
	if w.code == 0 && code >= 200 {
		w.code = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statsWriter) Write(p []byte) (int, error) {
	n, err := w.ResponseWriter.Write(p)
	w.n += int64(n)
	return n, err
}

func (w *statsWriter) Flush() { http.NewResponseController(w.ResponseWriter).Flush() }

// Hijack lets WebSocket upgrades through (ReverseProxy hijacks after the
// backend answered 101).
func (w *statsWriter) Hijack() (net.Conn, *bufio.ReadWriter, error) {
	c, brw, err := http.NewResponseController(w.ResponseWriter).Hijack()
	if err != nil {
		return nil, nil, err
	}
	w.hijacked = true
	return w.g.trackHijacked(c), brw, nil
}

// Unwrap lets http.ResponseController reach the server's writer.
func (w *statsWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

type countingBody struct {
	io.ReadCloser
	n   int64
	eof atomic.Bool // the whole body was read
}

func (b *countingBody) Read(p []byte) (int, error) {
	n, err := b.ReadCloser.Read(p)
	b.n += int64(n)
	if err == io.EOF {
		b.eof.Store(true)
	}
	return n, err
}

// bufferPool recycles the proxy's copy buffers.
type bufferPool struct{}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *copyBufs.Get().(*[]byte) }
func (bufferPool) Put(b []byte) { copyBufs.Put(&b) }
