package gateway

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"strings"
	"testing"
	"time"
)

// h1Dial opens a raw HTTP/1.1 client connection to the gateway.
func h1Dial(t *testing.T, g *Gateway, addr, name string) (*tls.Conn, *bufio.Reader) {
	t.Helper()
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(g.CACertPEM())
	c, err := tls.Dial("tcp", addr, &tls.Config{ServerName: name + "." + testDomain, RootCAs: pool, NextProtos: []string{"http/1.1"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.SetDeadline(time.Now().Add(10 * time.Second))
	return c, bufio.NewReader(c)
}

// echoBody answers with what the backend saw of the request's framing
// and body.
func echoBody(w http.ResponseWriter, r *http.Request) {
	b, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	fmt.Fprintf(w, "%s %s cl=%d te=%v cl-header=%q body=%q", r.Method, r.RequestURI, r.ContentLength,
		r.TransferEncoding, r.Header.Get("Content-Length"), b)
}

func readResp(t *testing.T, br *bufio.Reader, method string) (*http.Response, string) {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, string(b)
}

func TestH1RequestBodies(t *testing.T) {
	t.Parallel()
	mb := newMemBackends()
	mb.addHTTP(t, "alpha", http.HandlerFunc(echoBody))
	g, addr := startGateway(t, mb, Limits{})
	host := "Host: alpha." + testDomain + "\r\n"
	cases := []struct{ name, req, want string }{
		{"content-length", "POST /a?b=c HTTP/1.1\r\n" + host + "Content-Length: 5\r\n\r\nhello",
			`POST /a?b=c cl=5 te=[] cl-header="5" body="hello"`},
		{"chunked", "PUT /up HTTP/1.1\r\n" + host + "Transfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n",
			`PUT /up cl=-1 te=[chunked] cl-header="" body="abcde"`},
		// Both framings: the gateway reads it one way (chunked) and the
		// backend must see exactly that, never the other reading.
		{"content-length and chunked", "POST /x HTTP/1.1\r\n" + host + "Content-Length: 30\r\nTransfer-Encoding: chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n",
			`POST /x cl=-1 te=[chunked] cl-header="" body="ok"`},
		{"empty post", "POST /e HTTP/1.1\r\n" + host + "\r\n", `POST /e cl=0 te=[] cl-header="0" body=""`},
		{"absolute form", "GET http://alpha." + testDomain + "/abs?q HTTP/1.1\r\n" + host + "\r\n", `GET /abs?q cl=0 te=[] cl-header="" body=""`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, br := h1Dial(t, g, addr, "alpha")
			io.WriteString(c, tc.req)
			resp, body := readResp(t, br, "GET")
			if resp.StatusCode != 200 || body != tc.want {
				t.Fatalf("%d %q\nwant 200 %q", resp.StatusCode, body, tc.want)
			}
		})
	}
}

func TestH1PipelinedAndHead(t *testing.T) {
	t.Parallel()
	mb := newMemBackends()
	mb.addHTTP(t, "alpha", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/none":
			w.WriteHeader(http.StatusNoContent)
		case "/same":
			w.Header().Set("ETag", `"v1"`)
			w.WriteHeader(http.StatusNotModified)
		default:
			w.Header().Set("Content-Length", "11")
			io.WriteString(w, "hello world")
		}
	}))
	g, addr := startGateway(t, mb, Limits{})
	c, br := h1Dial(t, g, addr, "alpha")
	h := "Host: alpha." + testDomain + "\r\n\r\n"
	io.WriteString(c, "HEAD / HTTP/1.1\r\n"+h+"GET /none HTTP/1.1\r\n"+h+"GET /same HTTP/1.1\r\n"+h+"GET / HTTP/1.1\r\n"+h)
	resp, body := readResp(t, br, "HEAD")
	if resp.StatusCode != 200 || resp.ContentLength != 11 || body != "" {
		t.Fatalf("HEAD: %d length %d body %q, want 200, 11, none", resp.StatusCode, resp.ContentLength, body)
	}
	if resp, body = readResp(t, br, "GET"); resp.StatusCode != 204 || body != "" {
		t.Fatalf("204: %d %q", resp.StatusCode, body)
	}
	if resp, body = readResp(t, br, "GET"); resp.StatusCode != 304 || body != "" || resp.Header.Get("ETag") != `"v1"` {
		t.Fatalf("304: %d %q %v", resp.StatusCode, body, resp.Header)
	}
	if resp, body = readResp(t, br, "GET"); resp.StatusCode != 200 || body != "hello world" || resp.Close {
		t.Fatalf("GET after pipelined ones: %d %q close=%v", resp.StatusCode, body, resp.Close)
	}
}

// TestH1StreamsResponses: a response the backend sends in parts reaches
// the client part by part, not when the backend is done.
func TestH1StreamsResponses(t *testing.T) {
	t.Parallel()
	mb := newMemBackends()
	next := make(chan struct{})
	mb.addHTTP(t, "alpha", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/event-stream")
		w.Header().Set("Trailer", "X-Sum")
		io.WriteString(w, "data: first\n\n")
		w.(http.Flusher).Flush()
		select {
		case <-next:
		case <-r.Context().Done():
			return
		}
		io.WriteString(w, "data: second\n\n")
		w.Header().Set("X-Sum", "2")
	}))
	g, addr := startGateway(t, mb, Limits{})
	c, br := h1Dial(t, g, addr, "alpha")
	io.WriteString(c, "GET /events HTTP/1.1\r\nHost: alpha."+testDomain+"\r\n\r\n")
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || line != "data: first\n" {
		t.Fatalf("first event: %q %v (held back until the backend ends?)", line, err)
	}
	close(next)
	rest, err := io.ReadAll(resp.Body)
	if err != nil || !strings.Contains(string(rest), "data: second") {
		t.Fatalf("rest: %q %v", rest, err)
	}
	if resp.Trailer.Get("X-Sum") != "2" {
		t.Fatalf("trailer X-Sum = %q, want 2", resp.Trailer.Get("X-Sum"))
	}
}

func TestH1ExpectContinue(t *testing.T) {
	t.Parallel()
	mb := newMemBackends()
	mb.addHTTP(t, "alpha", http.HandlerFunc(echoBody))
	g, addr := startGateway(t, mb, Limits{})
	c, br := h1Dial(t, g, addr, "alpha")
	io.WriteString(c, "POST /c HTTP/1.1\r\nHost: alpha."+testDomain+"\r\nExpect: 100-continue\r\nContent-Length: 3\r\n\r\n")
	line, err := br.ReadString('\n')
	if err != nil || line != "HTTP/1.1 100 Continue\r\n" {
		t.Fatalf("before the body: %q %v, want a 100 Continue", line, err)
	}
	br.ReadString('\n')
	io.WriteString(c, "abc")
	resp, body := readResp(t, br, "POST")
	if resp.StatusCode != 200 || body != `POST /c cl=3 te=[] cl-header="3" body="abc"` {
		t.Fatalf("%d %q", resp.StatusCode, body)
	}
	io.WriteString(c, "GET / HTTP/1.1\r\nHost: alpha."+testDomain+"\r\nExpect: magic\r\n\r\n")
	if resp, _ := readResp(t, br, "GET"); resp.StatusCode != http.StatusExpectationFailed {
		t.Fatalf("unknown expectation: %d, want 417", resp.StatusCode)
	}
}

// TestH1EarlyResponse: a backend that answers before it read the body
// (here: refuses it) gets its answer to the client while the client is
// still sending.
func TestH1EarlyResponse(t *testing.T) {
	t.Parallel()
	mb := newMemBackends()
	mb.addHTTP(t, "alpha", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Connection", "close")
		http.Error(w, "too big", http.StatusRequestEntityTooLarge)
	}))
	g, addr := startGateway(t, mb, Limits{})
	c, br := h1Dial(t, g, addr, "alpha")
	io.WriteString(c, "POST /big HTTP/1.1\r\nHost: alpha."+testDomain+"\r\nContent-Length: 100000000\r\n\r\n")
	go func() {
		chunk := bytes.Repeat([]byte("x"), 64<<10)
		for range 8 {
			if _, err := c.Write(chunk); err != nil {
				return
			}
		}
	}()
	resp, body := readResp(t, br, "POST")
	if resp.StatusCode != http.StatusRequestEntityTooLarge || !strings.Contains(body, "too big") {
		t.Fatalf("%d %q, want 413 too big", resp.StatusCode, body)
	}
}

func TestH1BadRequests(t *testing.T) {
	t.Parallel()
	mb := newMemBackends()
	mb.addHTTP(t, "alpha", http.HandlerFunc(echoBody))
	g, addr := startGateway(t, mb, Limits{})
	cases := []struct {
		req  string
		code int
	}{
		{"GET / HTTP/1.1\r\n\r\n", 400}, // no Host
		{"GET / HTTP/1.1\r\nHost: alpha." + testDomain + "\r\nBad Header\r\n\r\n", 400}, // no colon
		{"NOT A REQUEST\r\n\r\n", 400},
		{"CONNECT alpha." + testDomain + ":443 HTTP/1.1\r\nHost: alpha." + testDomain + "\r\n\r\n", 405},
		{"POST / HTTP/1.1\r\nHost: alpha." + testDomain + "\r\nTransfer-Encoding: gzip\r\n\r\n", 501},
		{"POST / HTTP/1.1\r\nHost: alpha." + testDomain + "\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", 400},
	}
	for _, tc := range cases {
		c, br := h1Dial(t, g, addr, "alpha")
		io.WriteString(c, tc.req)
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			t.Fatalf("%q: %v", tc.req, err)
		}
		body, _ := io.ReadAll(resp.Body)
		want := fmt.Sprintf("%d %s\n", tc.code, http.StatusText(tc.code))
		if resp.StatusCode != tc.code || string(body) != want {
			t.Errorf("%q: %d %q, want %d %q", tc.req, resp.StatusCode, body, tc.code, want)
		}
		if _, err := br.ReadByte(); err != io.EOF {
			t.Errorf("%q: connection left open after an error (%v)", tc.req, err)
		}
	}
	// An HTTP/1.0 client gets its answer and the close it expects.
	c, br := h1Dial(t, g, addr, "alpha")
	io.WriteString(c, "GET /old HTTP/1.0\r\nHost: alpha."+testDomain+"\r\n\r\n")
	resp, body := readResp(t, br, "GET")
	if resp.StatusCode != 200 || !strings.HasPrefix(body, "GET /old") || !resp.Close {
		t.Fatalf("HTTP/1.0: %d %q close=%v", resp.StatusCode, body, resp.Close)
	}
}

// TestShutdownEndsIdleH1: Shutdown does not wait for keep-alive clients
// that sit idle, and lets a request in flight finish.
func TestShutdownEndsIdleH1(t *testing.T) {
	t.Parallel()
	mb := newMemBackends()
	started, release := make(chan struct{}), make(chan struct{})
	mb.addHTTP(t, "alpha", http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/slow" {
			close(started)
			<-release
		}
		io.WriteString(w, "done")
	}))
	g, addr := startGateway(t, mb, Limits{})
	idle, idleBR := h1Dial(t, g, addr, "alpha")
	io.WriteString(idle, "GET / HTTP/1.1\r\nHost: alpha."+testDomain+"\r\n\r\n")
	readResp(t, idleBR, "GET")
	busy, busyBR := h1Dial(t, g, addr, "alpha")
	io.WriteString(busy, "GET /slow HTTP/1.1\r\nHost: alpha."+testDomain+"\r\n\r\n")
	<-started // the slow request is in flight
	done := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		defer cancel()
		done <- g.Shutdown(ctx)
	}()
	if _, err := idleBR.ReadByte(); err != io.EOF {
		t.Fatalf("idle connection after Shutdown: %v, want EOF", err)
	}
	close(release)
	resp, body := readResp(t, busyBR, "GET")
	if resp.StatusCode != 200 || body != "done" {
		t.Fatalf("request in flight: %d %q", resp.StatusCode, body)
	}
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Shutdown still waiting 10s after the last request ended")
	}
}

// FuzzH1Reframe: whatever a client sends, a request the gateway accepts
// reaches the backend as one well-formed message that a strict parser
// reads back with the same method, target, host and body.
func FuzzH1Reframe(f *testing.F) {
	f.Add([]byte("GET / HTTP/1.1\r\nHost: a.grid.test\r\n\r\n"))
	f.Add([]byte("POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\n\r\nabc"))
	f.Add([]byte("POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 9\r\n\r\n1\r\nz\r\n0\r\n\r\n"))
	f.Add([]byte("GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade, X-Drop\r\nUpgrade: websocket\r\nX-Drop: 1\r\n\r\n"))
	f.Add([]byte("GET http://h/p?q HTTP/1.0\r\nX-Forwarded-For: 6.6.6.6\r\n\r\n"))
	client := netip.MustParseAddr("192.0.2.7")
	f.Fuzz(func(t *testing.T, raw []byte) {
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(raw)))
		if err != nil || req.Method == http.MethodConnect {
			return
		}
		in, err := io.ReadAll(io.LimitReader(req.Body, 1<<20))
		if err != nil {
			return // a body cut short never reaches a backend whole
		}
		req.Body = io.NopCloser(bytes.NewReader(in))
		if len(in) == 0 {
			req.Body = http.NoBody
		}
		req.ContentLength = int64(len(in))
		if req.TransferEncoding != nil {
			req.ContentLength = -1
		}
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		if err := writeRequest(w, req, client, upgradeType(req.Header)); err != nil {
			t.Fatal(err)
		}
		back, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(out.Bytes())))
		if err != nil {
			t.Fatalf("backend cannot parse what the gateway wrote: %v\n%q", err, out.Bytes())
		}
		body, err := io.ReadAll(back.Body)
		if err != nil {
			t.Fatalf("body: %v\n%q", err, out.Bytes())
		}
		if back.Method != req.Method || back.RequestURI != req.URL.RequestURI() || back.Host != req.Host || !bytes.Equal(body, in) {
			t.Fatalf("backend read %s %s host %q body %q; gateway had %s %s host %q body %q",
				back.Method, back.RequestURI, back.Host, body, req.Method, req.URL.RequestURI(), req.Host, in)
		}
		if back.Header.Get("X-Forwarded-For") != "192.0.2.7" || len(back.Header["X-Forwarded-For"]) != 1 {
			t.Fatalf("X-Forwarded-For %q", back.Header["X-Forwarded-For"])
		}
		if len(back.Header["Content-Length"]) > 0 && len(back.TransferEncoding) > 0 {
			t.Fatalf("both framings reached the backend:\n%q", out.Bytes())
		}
	})
}

// FuzzH1ResponseReframe: whatever a backend answers, what the client
// gets is one well-formed response with the same status and body.
func FuzzH1ResponseReframe(f *testing.F) {
	f.Add([]byte("HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"), false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTrailer: X-T\r\n\r\n2\r\nok\r\n0\r\nX-T: 1\r\n\r\n"), false)
	f.Add([]byte("HTTP/1.0 200 OK\r\n\r\nuntil close"), true)
	f.Add([]byte("HTTP/1.1 204 No Content\r\nContent-Length: 5\r\n\r\n"), false)
	f.Add([]byte("HTTP/1.1 200 OK\r\nConnection: X-Secret\r\nX-Secret: 1\r\nContent-Length: 0\r\n\r\n"), true)
	f.Fuzz(func(t *testing.T, raw []byte, head bool) {
		method := "GET"
		if head {
			method = "HEAD"
		}
		req := &http.Request{Method: method, Proto: "HTTP/1.1", ProtoMajor: 1, ProtoMinor: 1}
		from := bufio.NewReader(bytes.NewReader(raw))
		resp, err := readResponse(from, req)
		if err != nil || resp.StatusCode == http.StatusSwitchingProtocols {
			return
		}
		var out bytes.Buffer
		w := bufio.NewWriter(&out)
		n, ok := writeResponse(w, w.Flush, req, resp, from, false)
		if !ok {
			return // a backend body cut short: the client connection is closed
		}
		got, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(out.Bytes())), req)
		if err != nil {
			t.Fatalf("client cannot parse what the gateway wrote: %v\n%q", err, out.Bytes())
		}
		body, err := io.ReadAll(got.Body)
		if err != nil {
			t.Fatalf("body: %v\n%q", err, out.Bytes())
		}
		if got.StatusCode != resp.StatusCode || int64(len(body)) != n {
			t.Fatalf("client read %d with %d bytes; gateway sent %d with %d\n%q", got.StatusCode, len(body), resp.StatusCode, n, out.Bytes())
		}
		if len(got.Header["Content-Length"]) > 0 && len(got.TransferEncoding) > 0 {
			t.Fatalf("both framings reached the client:\n%q", out.Bytes())
		}
		for k := range got.Header {
			if connectionListed(resp.Header, k) && k != "Connection" {
				t.Fatalf("header %s, named in Connection, was forwarded", k)
			}
		}
	})
}

// TestH1SkipsStreamsTheBackendClosed: a pooled stream whose backend hung
// up while idle (an origin's keep-alive timeout) is not used for the next
// request, so even a request that cannot be replayed gets through.
func TestH1SkipsStreamsTheBackendClosed(t *testing.T) {
	t.Parallel()
	mb := newMemBackends()
	mb.addServer(t, "alpha", &http.Server{Handler: http.HandlerFunc(echoBody), IdleTimeout: 50 * time.Millisecond})
	g, addr := startGateway(t, mb, Limits{})
	c, br := h1Dial(t, g, addr, "alpha")
	io.WriteString(c, "GET /1 HTTP/1.1\r\nHost: alpha."+testDomain+"\r\n\r\n")
	if resp, _ := readResp(t, br, "GET"); resp.StatusCode != 200 {
		t.Fatalf("first: %d", resp.StatusCode)
	}
	time.Sleep(300 * time.Millisecond) // the backend closes its idle connection
	io.WriteString(c, "POST /2 HTTP/1.1\r\nHost: alpha."+testDomain+"\r\nContent-Length: 2\r\n\r\nhi")
	if resp, body := readResp(t, br, "POST"); resp.StatusCode != 200 || !strings.Contains(body, `body="hi"`) {
		t.Fatalf("POST after the backend closed the idle stream: %d %q, want 200", resp.StatusCode, body)
	}
}

func TestStreamPoolPrunes(t *testing.T) {
	p := newStreamPool()
	now := time.Now()
	var conns []*backendConn
	for i := range 3 {
		a, b := net.Pipe()
		t.Cleanup(func() { b.Close() })
		bc := &backendConn{Conn: a, name: "n", br: bufio.NewReader(a), bw: bufio.NewWriter(a)}
		p.track(bc)
		p.release(bc, true, now.Add(time.Duration(i)*time.Minute))
		conns = append(conns, bc)
	}
	p.prune(now.Add(streamIdleTimeout + 90*time.Second)) // the first two are too old
	if got := len(p.idle["n"]); got != 1 || p.idle["n"][0] != conns[2] {
		t.Fatalf("after prune: %d idle, want the newest only", got)
	}
	if _, err := conns[0].Write([]byte("x")); err == nil {
		t.Fatal("a pruned stream is still open")
	}
}
