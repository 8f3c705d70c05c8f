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
}

// StreamMeta is what the gateway tells the backend about a stream.
type StreamMeta struct {
	Client netip.AddrPort // the public client's address
	Mode   Mode
}

// Server is the gateway's end of tunnels. Safe for concurrent use.
type Server struct {
	cfg ServerConfig
	tls *tls.Config
	log *slog.Logger

	mu       sync.Mutex
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
	cert, err := cfg.Key.TLSCertificate()
	if err != nil {
		return nil, err
	}
	s := &Server{cfg: cfg, log: cfg.Logger, backends: map[string][]*backend{}, next: map[string]int{}}
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

// ServeQUIC accepts tunnels over QUIC on pc until ctx ends.
func (s *Server) ServeQUIC(ctx context.Context, pc net.PacketConn) error {
	setUDPBuffers(pc)
	qc := quicConfig(s.cfg.Heartbeat)
	qc.MaxIncomingStreams = 4 // a backend opens only the control stream
	ln, err := listenQUIC(pc, s.tls, qc)
	if err != nil {
		return err
	}
	defer ln.Close()
	for {
		c, err := ln.Accept(ctx)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return err
		}
		go s.handle(ctx, quicSession{c})
	}
}

// ServeTLS accepts tunnels over TLS on TCP (yamux streams) on l until ctx
// ends.
func (s *Server) ServeTLS(ctx context.Context, l net.Listener) error {
	go func() { <-ctx.Done(); l.Close() }()
	for {
		c, err := l.Accept()
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return err
		}
		go func() {
			tc := tls.Server(c, s.tls)
			hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
			defer cancel()
			if err := tc.HandshakeContext(hctx); err != nil {
				s.log.Debug("tunnel TLS handshake failed", "remote", c.RemoteAddr().String(), "err", err)
				c.Close()
				return
			}
			ys, err := yamux.Server(tc, yamuxConfig(s.cfg.Heartbeat))
			if err != nil {
				c.Close()
				return
			}
			s.handle(ctx, yamuxSession{ys, tc})
		}()
	}
}

// handle runs one tunnel: the hello exchange, then keeps its routes
// registered until the tunnel ends.
func (s *Server) handle(ctx context.Context, sess session) {
	defer sess.Close()
	key, routes, ctrl, err := s.greet(ctx, sess)
	if err != nil {
		s.log.Info("tunnel refused", "remote", sess.RemoteAddr().String(), "err", err)
		return
	}
	defer ctrl.Close()
	if len(routes) == 0 {
		linger(ctrl)
		return
	}
	var bs []*backend
	for _, r := range routes {
		bs = append(bs, &backend{key: key, mode: r.Mode, sess: sess})
	}
	s.register(bs, routes)
	defer s.unregister(bs, routes)
	s.log.Info("tunnel up", "key", key.String(), "transport", sess.Transport(), "remote", sess.RemoteAddr().String(), "names", len(routes))
	go func() { // a missed heartbeat or a closed control stream ends the tunnel
		err := answerPings(ctrl, s.cfg.Heartbeat)
		s.log.Debug("tunnel control stream ended", "key", key.String(), "err", err)
		sess.Close()
	}()
	go s.recheck(ctx, sess, key, routes)
	go func() { // backends open no stream but the control one
		if st, err := sess.Accept(ctx); err == nil {
			st.Close()
			s.log.Warn("backend opened a second stream; closing its tunnel", "key", key.String())
			sess.Close()
		}
	}()
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
	t := time.NewTicker(s.cfg.Recheck)
	defer t.Stop()
	for {
		select {
		case <-sess.Done():
			return
		case <-ctx.Done():
			return
		case <-t.C:
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

// greet runs the control exchange and returns the accepted routes.
func (s *Server) greet(ctx context.Context, sess session) (identity.PublicKey, []RouteDecl, net.Conn, error) {
	hctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	st := sess.TLS()
	if len(st.PeerCertificates) == 0 {
		return identity.PublicKey{}, nil, nil, fmt.Errorf("%w: no client certificate", ErrProtocol)
	}
	key, err := identity.CertificateKey([][]byte{st.PeerCertificates[0].Raw})
	if err != nil {
		return key, nil, nil, err
	}
	ctrl, err := sess.Accept(hctx)
	if err != nil {
		return key, nil, nil, err
	}
	fail := func(err error) (identity.PublicKey, []RouteDecl, net.Conn, error) {
		ctrl.Close()
		return key, nil, nil, err
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
	if err := writeFrame(ctrl, w); err != nil {
		return fail(err)
	}
	ctrl.SetDeadline(time.Time{})
	return key, accepted, ctrl, nil
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
	now := time.Now().Unix()
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
