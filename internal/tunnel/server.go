package tunnel

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"time"

	"github.com/hashicorp/yamux"

	"github.com/zerogrid/zerogrid/internal/identity"
)

// Authorizer decides whether key may serve name; a nil error means yes.
// The error's text is sent to the refused backend as the reason; a
// refusal wraps ErrNotAuthorized (see there).
type Authorizer interface {
	Authorize(ctx context.Context, name string, key identity.PublicKey) error
}

// Observer hears about tunnels coming and going, per name (metrics).
type Observer interface {
	TunnelUp(name string)
	TunnelDown(name string)
}

// ServerConfig configures a Server.
type ServerConfig struct {
	// Key is the gateway's identity: its TLS certificate is self-signed
	// with it, and backends pin its public half.
	Key        identity.PrivateKey
	Authorizer Authorizer
	Logger     *slog.Logger
	Observer   Observer // optional

	// Heartbeat is the ping interval backends use; a tunnel with no ping
	// for three intervals is dropped (10 s).
	Heartbeat time.Duration

	// StreamTimeout bounds how long Dial waits for one backend to answer
	// a new stream before it tries the next (5 s).
	StreamTimeout time.Duration

	// Recheck is how often a live tunnel's names are put to the
	// Authorizer again (30 s); a tunnel with a name that is refused now
	// (released, given to another owner, its contract cancelled) is
	// closed, and the backend hears the reason when it reconnects.
	Recheck time.Duration

	// Clock times heartbeats, rechecks and hello expiry; the system
	// clock when nil.
	Clock Clock
}

// StreamMeta is what the gateway tells the backend about a stream.
type StreamMeta struct {
	Client netip.AddrPort // the public client's address
	Mode   Mode
}

// Server is the gateway's end of tunnels. Safe for concurrent use. Every
// goroutine it starts (one per tunnel and per TLS handshake, and each
// tunnel's heartbeat, recheck and stream guard) is counted; Close ends
// them and waits for them.
type Server struct {
	cfg   ServerConfig
	tls   *tls.Config
	log   *slog.Logger
	clock Clock

	ctx    context.Context // ends at Close
	cancel context.CancelFunc

	mu       sync.Mutex
	closed   bool
	wg       sync.WaitGroup         // Serve loops and the goroutines the server started
	closers  map[io.Closer]struct{} // listeners and QUIC transports the Serve loops use
	backends map[string][]*backend
	next     map[string]int
}

// backend is one tunnel's offer to serve one name.
type backend struct {
	key  identity.PublicKey
	mode Mode
	sess session
}

// NewServer returns a server; serve it with ServeQUIC and ServeTLS.
func NewServer(cfg ServerConfig) (*Server, error) {
	if cfg.Key.IsZero() || cfg.Authorizer == nil {
		return nil, errors.New("tunnel: ServerConfig needs Key and Authorizer")
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.Heartbeat <= 0 {
		cfg.Heartbeat = defaultHeartbeat
	}
	if cfg.StreamTimeout <= 0 {
		cfg.StreamTimeout = openTimeout
	}
	if cfg.Recheck <= 0 {
		cfg.Recheck = 30 * time.Second
	}
	if cfg.Clock == nil {
		cfg.Clock = systemClock{}
	}
	cert, err := cfg.Key.TLSCertificate()
	if err != nil {
		return nil, err
	}
	ctx, cancel := context.WithCancel(context.Background())
	s := &Server{cfg: cfg, log: cfg.Logger, clock: cfg.Clock, ctx: ctx, cancel: cancel,
		closers: map[io.Closer]struct{}{}, backends: map[string][]*backend{}, next: map[string]int{}}
	s.tls = &tls.Config{
		Certificates: []tls.Certificate{cert},
		MinVersion:   tls.VersionTLS13,
		NextProtos:   []string{alpn},
		ClientAuth:   tls.RequireAnyClientCert, // the key is checked against the hello and the Authorizer
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			_, err := identity.CertificateKey(raw)
			return err
		},
	}
	return s, nil
}

// ServeQUIC accepts tunnels over QUIC on pc until ctx ends or Close is
// called; it returns nil, or ErrServerClosed after Close. Its tunnels end
// with it. pc stays open (the caller's).
func (s *Server) ServeQUIC(ctx context.Context, pc net.PacketConn) error {
	setUDPBuffers(pc)
	qc := quicConfig(s.cfg.Heartbeat)
	qc.MaxIncomingStreams = 4 // a backend opens only the control stream
	tr, rx := quicTransport(pc)
	leave, ok := s.enter(tr) // Close closes the transport: the listener and every QUIC tunnel
	if !ok {
		return ErrServerClosed
	}
	defer leave()
	defer func() {
		tr.Close()
		if rx != nil {
			rx.wait()
		}
	}()
	ln, err := tr.Listen(s.tls, qc)
	if err != nil {
		return err
	}
	for {
		c, err := ln.Accept(ctx)
		switch {
		case err == nil:
		case s.isClosed():
			return ErrServerClosed
		case ctx.Err() != nil:
			return nil
		default:
			return err
		}
		if rx != nil {
			rx.track(c)
		}
		sess := &quicSession{c: c}
		if !s.spawn(func() { s.handle(ctx, sess) }) {
			sess.Close()
		}
	}
}

// ServeTLS accepts tunnels over TLS on TCP (yamux streams) on l until ctx
// ends or Close is called, then closes l; it returns nil, or
// ErrServerClosed after Close. Its tunnels end with it.
func (s *Server) ServeTLS(ctx context.Context, l net.Listener) error {
	leave, ok := s.enter(l) // Close closes l
	if !ok {
		l.Close()
		return ErrServerClosed
	}
	defer leave()
	done := make(chan struct{})
	defer close(done)
	s.spawn(func() {
		select {
		case <-ctx.Done():
		case <-done:
		}
		l.Close()
	})
	for {
		c, err := l.Accept()
		if err != nil {
			if s.isClosed() {
				return ErrServerClosed
			}
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		if !s.spawn(func() { s.serveTLSConn(ctx, c) }) {
			c.Close()
		}
	}
}

// serveTLSConn runs the TLS handshake of one TCP connection, then its
// tunnel.
func (s *Server) serveTLSConn(serveCtx context.Context, c net.Conn) {
	ctx, stop := either(s.ctx, serveCtx)
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	tc := tls.Server(c, s.tls)
	err := tc.HandshakeContext(hctx) // an ending context closes c
	cancel()
	stop()
	if err != nil {
		s.log.Debug("tunnel TLS handshake failed", "remote", c.RemoteAddr().String(), "err", err)
		c.Close()
		return
	}
	ys, err := yamux.Server(tc, yamuxConfig(s.cfg.Heartbeat))
	if err != nil {
		c.Close()
		return
	}
	s.handle(serveCtx, &yamuxSession{s: ys, tls: tc})
}

// enter counts a Serve loop for Close to wait for and registers c for
// Close to close; false once Close has begun. leave undoes both.
func (s *Server) enter(c io.Closer) (leave func(), ok bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return nil, false
	}
	s.wg.Add(1)
	s.closers[c] = struct{}{}
	return func() {
		s.mu.Lock()
		delete(s.closers, c)
		s.mu.Unlock()
		s.wg.Done()
	}, true
}

// spawn runs f on a goroutine Close waits for; false once Close has
// begun (f does not run).
func (s *Server) spawn(f func()) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed {
		return false
	}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		f()
	}()
	return true
}

func (s *Server) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

// Close stops the server: the Serve loops return ErrServerClosed (a
// Serve called later returns it at once), every tunnel is closed (its
// backend reconnects, to another gateway or later), and Close returns
// once every goroutine the server started has ended. Streams Dial
// returned are the caller's; they end with their tunnels. Close is
// idempotent and safe to call at any time, also concurrently with new
// connections and with itself; every call returns after the goroutines
// ended.
func (s *Server) Close() error {
	s.mu.Lock()
	var cs []io.Closer
	if !s.closed {
		s.closed = true
		s.cancel()
		for c := range s.closers {
			cs = append(cs, c)
		}
	}
	s.mu.Unlock()
	for _, c := range cs {
		c.Close()
	}
	s.wg.Wait()
	return nil
}

// either returns a context that ends when a or b does. stop releases it
// and waits for the goroutine that watches b.
func either(a, b context.Context) (ctx context.Context, stop func()) {
	ctx, cancel := context.WithCancel(a)
	done := make(chan struct{})
	go func() {
		defer close(done)
		select {
		case <-b.Done():
			cancel()
		case <-ctx.Done():
		}
	}()
	return ctx, func() { cancel(); <-done }
}

// handle runs one tunnel: the hello exchange, then keeps its routes
// registered until the tunnel ends, Serve's ctx ends or the server
// closes. It returns once the goroutines it started have ended.
func (s *Server) handle(serveCtx context.Context, sess session) {
	ctx, stop := either(s.ctx, serveCtx)
	var wg sync.WaitGroup
	defer func() {
		stop()
		sess.Close()
		wg.Wait()
	}()
	wg.Go(func() { // the end of ctx ends the tunnel, also while it greets
		<-ctx.Done()
		sess.Close()
	})
	key, w, routes, ctrl, err := s.greet(ctx, sess)
	if err != nil {
		s.log.Info("tunnel refused", "remote", sess.RemoteAddr().String(), "err", err)
		return
	}
	defer ctrl.Close()
	if len(routes) == 0 {
		if writeFrame(ctrl, w) == nil {
			linger(ctrl)
		}
		return
	}
	// Registered before the welcome goes out: a backend that hears it is
	// served.
	var bs []*backend
	for _, r := range routes {
		bs = append(bs, &backend{key: key, mode: r.Mode, sess: sess})
	}
	s.register(bs, routes)
	defer s.unregister(bs, routes)
	if err := writeFrame(ctrl, w); err != nil {
		s.log.Info("tunnel lost before its welcome", "key", key.String(), "err", err)
		return
	}
	ctrl.SetDeadline(time.Time{})
	s.log.Info("tunnel up", "key", key.String(), "transport", sess.Transport(), "remote", sess.RemoteAddr().String(), "names", len(routes))
	wg.Go(func() { // a missed heartbeat or a closed control stream ends the tunnel
		err := answerPings(ctrl, s.cfg.Heartbeat, s.clock)
		s.log.Debug("tunnel control stream ended", "key", key.String(), "err", err)
		sess.Close()
	})
	wg.Go(func() { s.recheck(ctx, sess, key, routes) })
	wg.Go(func() { // backends open no stream but the control one
		if st, err := sess.Accept(ctx); err == nil {
			st.Close()
			s.log.Warn("backend opened a second stream; closing its tunnel", "key", key.String())
			sess.Close()
		}
	})
	select {
	case <-sess.Done():
	case <-ctx.Done():
	}
	s.log.Info("tunnel down", "key", key.String(), "remote", sess.RemoteAddr().String())
}

// recheck asks the Authorizer about a live tunnel's names every Recheck
// and closes the tunnel when one is refused. A question the Authorizer
// could not answer leaves the tunnel alone.
func (s *Server) recheck(ctx context.Context, sess session, key identity.PublicKey, routes []RouteDecl) {
	for {
		select {
		case <-sess.Done():
			return
		case <-ctx.Done():
			return
		case <-s.clock.After(s.cfg.Recheck):
		}
		for _, r := range routes {
			actx, cancel := context.WithTimeout(ctx, s.cfg.Recheck)
			err := s.cfg.Authorizer.Authorize(actx, r.Name, key)
			cancel()
			switch {
			case errors.Is(err, ErrNotAuthorized):
				s.log.Warn("name no longer authorized; closing the tunnel", "name", r.Name, "key", key.String(), "reason", err)
				sess.Close()
				return
			case err != nil:
				s.log.Debug("recheck of a live tunnel's name not answered; keeping it", "name", r.Name, "err", err)
			}
		}
	}
}

// greet runs the control exchange up to the verdicts and returns them,
// the accepted routes and the control stream, whose deadline is still
// set for writing the welcome.
func (s *Server) greet(ctx context.Context, sess session) (identity.PublicKey, welcome, []RouteDecl, net.Conn, error) {
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st := sess.TLS()
	if len(st.PeerCertificates) == 0 {
		return identity.PublicKey{}, welcome{}, nil, nil, fmt.Errorf("%w: no client certificate", ErrProtocol)
	}
	key, err := identity.CertificateKey([][]byte{st.PeerCertificates[0].Raw})
	if err != nil {
		return key, welcome{}, nil, nil, err
	}
	ctrl, err := sess.Accept(hctx)
	if err != nil {
		return key, welcome{}, nil, nil, err
	}
	fail := func(err error) (identity.PublicKey, welcome, []RouteDecl, net.Conn, error) {
		ctrl.Close()
		return key, welcome{}, nil, nil, err
	}
	ctrl.SetDeadline(time.Now().Add(10 * time.Second))
	var pre preamble
	if err := readFrame(ctrl, maxFrame, &pre); err != nil {
		return fail(err)
	}
	ch := challenge{Version: Version}
	if _, err := rand.Read(ch.Nonce[:]); err != nil {
		return fail(err)
	}
	if err := writeFrame(ctrl, ch); err != nil {
		return fail(err)
	}
	var h hello
	if err := readFrame(ctrl, maxFrame, &h); err != nil {
		return fail(err)
	}
	if err := s.checkHello(&h, key, ch.Nonce, st); err != nil {
		writeFrame(ctrl, welcome{Verdicts: []verdict{{Name: "*", Reason: truncate(err.Error(), maxReasonLen)}}})
		linger(ctrl)
		return fail(err)
	}
	w, accepted := s.judge(hctx, key, h.Body.Routes)
	return key, w, accepted, ctrl, nil
}

// checkHello verifies a hello against this connection: the key of the
// client certificate, this gateway's key, the challenge, the TLS exporter,
// the expiry and the signature.
func (s *Server) checkHello(h *hello, key identity.PublicKey, nonce [32]byte, st tls.ConnectionState) error {
	if err := h.Body.check(); err != nil {
		return err
	}
	binding, err := st.ExportKeyingMaterial(exporterLabel, nil, 32)
	if err != nil {
		return err
	}
	now := s.clock.Now().Unix()
	switch {
	case h.Body.Key != key:
		return fmt.Errorf("%w: hello is for key %s, but the connection's certificate is %s", ErrProtocol, h.Body.Key, key)
	case h.Body.Gateway != s.cfg.Key.Public():
		return fmt.Errorf("%w: hello is for gateway %s, not this one", ErrProtocol, h.Body.Gateway)
	case h.Body.Nonce != nonce:
		return fmt.Errorf("%w: hello does not answer this connection's challenge", ErrProtocol)
	case !bytes.Equal(h.Body.Binding[:], binding):
		return fmt.Errorf("%w: hello is bound to another TLS connection", ErrProtocol)
	case h.Body.Expires < now || h.Body.Expires > now+int64(2*helloLifetime/time.Second):
		return fmt.Errorf("%w: hello expires at %d, now %d (check the clock)", ErrProtocol, h.Body.Expires, now)
	}
	if err := key.Verify(helloTag, Version, h.Body, h.Sig); err != nil {
		return fmt.Errorf("%w: hello signature: %v", ErrProtocol, err)
	}
	return nil
}

// judge asks the Authorizer about each route.
func (s *Server) judge(ctx context.Context, key identity.PublicKey, routes []RouteDecl) (welcome, []RouteDecl) {
	var w welcome
	var ok []RouteDecl
	seen := map[string]bool{}
	for _, r := range routes {
		v := verdict{Name: r.Name}
		switch {
		case seen[r.Name]:
			v.Reason = "name listed twice"
		default:
			if err := s.cfg.Authorizer.Authorize(ctx, r.Name, key); err != nil {
				v.Reason = truncate(err.Error(), maxReasonLen)
			} else {
				v.OK = true
				ok = append(ok, r)
			}
		}
		seen[r.Name] = true
		w.Verdicts = append(w.Verdicts, v)
	}
	return w, ok
}

func truncate(s string, n int) string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

func (s *Server) register(bs []*backend, routes []RouteDecl) {
	s.mu.Lock()
	for i, r := range routes {
		s.backends[r.Name] = append(s.backends[r.Name], bs[i])
	}
	s.mu.Unlock()
	if s.cfg.Observer != nil {
		for _, r := range routes {
			s.cfg.Observer.TunnelUp(r.Name)
		}
	}
}

func (s *Server) unregister(bs []*backend, routes []RouteDecl) {
	s.mu.Lock()
	for i, r := range routes {
		list := s.backends[r.Name]
		for j, b := range list {
			if b == bs[i] {
				list = append(list[:j:j], list[j+1:]...)
				break
			}
		}
		if len(list) == 0 {
			delete(s.backends, r.Name)
		} else {
			s.backends[r.Name] = list
		}
	}
	s.mu.Unlock()
	if s.cfg.Observer != nil {
		for _, r := range routes {
			s.cfg.Observer.TunnelDown(r.Name)
		}
	}
}

// Mode reports the mode name's live backends declared (the first one's)
// and whether any is connected.
func (s *Server) Mode(name string) (Mode, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if bs := s.backends[name]; len(bs) > 0 {
		return bs[0].mode, true
	}
	return 0, false
}

// Dial opens a stream to one live backend of name, taking them in turn
// and trying the next when one fails to open a stream.
func (s *Server) Dial(ctx context.Context, name string, meta StreamMeta) (net.Conn, error) {
	s.mu.Lock()
	bs := append([]*backend(nil), s.backends[name]...)
	start := s.next[name]
	s.next[name]++
	s.mu.Unlock()
	if len(bs) == 0 {
		return nil, fmt.Errorf("%w: %s", ErrNoBackend, name)
	}
	hdr := streamHeader{Version: Version, Name: name, Mode: meta.Mode}
	if meta.Client.IsValid() {
		hdr.Client, _ = meta.Client.MarshalBinary()
	}
	var errs []error
	for i := range bs {
		b := bs[(start+i)%len(bs)]
		octx, cancel := context.WithTimeout(ctx, s.cfg.StreamTimeout)
		st, err := b.sess.Open(octx)
		cancel()
		if err == nil {
			if err = openAck(ctx, st, hdr, s.cfg.StreamTimeout); err == nil {
				return st, nil
			}
			st.Close()
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("%w: %s: %v", ErrNoBackend, name, errors.Join(errs...))
}

// linger lets the last message reach the backend before the session is
// closed (a QUIC close may discard unsent stream data): it ends the write
// side and waits briefly for the backend to hang up.
func linger(ctrl net.Conn) {
	if cw, ok := ctrl.(closeWriter); ok {
		cw.CloseWrite()
	}
	ctrl.SetReadDeadline(time.Now().Add(2 * time.Second))
	io.Copy(io.Discard, io.LimitReader(ctrl, maxFrame))
}

// openAck writes the stream header and waits for the backend's one-byte
// answer, so a backend that is gone or cannot reach its target is skipped
// before the caller sends anything. It costs one tunnel round trip.
func openAck(ctx context.Context, st net.Conn, hdr streamHeader, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline = d
	}
	st.SetDeadline(deadline)
	if err := writeFrame(st, hdr); err != nil {
		return err
	}
	var b [1]byte
	if _, err := io.ReadFull(st, b[:]); err != nil {
		return fmt.Errorf("backend did not answer the stream: %w", err)
	}
	st.SetDeadline(time.Time{})
	if b[0] != streamOK {
		return fmt.Errorf("backend could not reach its target for %s (code %d)", hdr.Name, b[0])
	}
	return nil
}
