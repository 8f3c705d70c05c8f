package tunnel

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/quic-go/quic-go"
	"golang.org/x/net/ipv4"

	"github.com/zerogrid/zerogrid/internal/identity"
)

// Flow control over TCP: one yamux stream may have 16 MiB in flight, so
// it keeps about 6 Gbit/s at 20 ms round trip (window ÷ RTT); yamux's
// 256 KiB default would cap it near 0.1 Gbit/s.
//
// Over QUIC the window is quic-go's default, 6 MiB a stream (2.5 Gbit/s
// at 20 ms). A bigger one buys no speed here, where the receiver's CPU
// and not the path is what a bulk stream fills: with rxConn (below) what
// the window lets through beyond that waits in the receiver's socket
// buffer. At 16 MiB RTTs reached 37–98 ms, and quic-go's HyStart, which
// also runs for a side that only sends ACKs and window updates, took the
// queue for a full path: during the gateway→backend transfer the backend
// left slow start at its initial 40 kB window, and then sent to the
// gateway at 0.06 Gbit/s (2 runs of 4; see rxConn for why the window then
// hardly grows). At 6 MiB no run of 11 did; both ways ran at 1.5–1.7.
const (
	streamWindow     = 16 << 20
	quicStreamWindow = 6 << 20
	quicConnWindow   = 15 << 20
	udpBuffer        = 8 << 20
)

// Transport names how a tunnel is carried.
type Transport string

// Transports.
const (
	TransportQUIC Transport = "quic"
	TransportTCP  Transport = "tls+tcp" // TLS 1.3 over TCP, yamux streams
)

// session is one tunnel connection, over either transport.
type session interface {
	Open(ctx context.Context) (net.Conn, error)
	Accept(ctx context.Context) (net.Conn, error)
	Close() error
	Done() <-chan struct{}
	Transport() Transport
	TLS() tls.ConnectionState
	RemoteAddr() net.Addr
}

// quicConfig: QUIC's own keep-alive and idle timeout follow the heartbeat
// (three missed beats end the tunnel).
func quicConfig(heartbeat time.Duration) *quic.Config {
	return &quic.Config{
		HandshakeIdleTimeout: 10 * time.Second,
		MaxIdleTimeout:       3 * heartbeat,
		KeepAlivePeriod:      heartbeat,
		// Windows start at 1 MiB and auto-tune up to the maxima.
		InitialStreamReceiveWindow: 1 << 20,
		MaxStreamReceiveWindow:     quicStreamWindow,
		MaxConnectionReceiveWindow: quicConnWindow,
		MaxIncomingStreams:         1 << 16,
	}
}

func yamuxConfig(heartbeat time.Duration) *yamux.Config {
	c := yamux.DefaultConfig()
	c.MaxStreamWindowSize = streamWindow
	c.KeepAliveInterval = heartbeat
	c.ConnectionWriteTimeout = 3 * heartbeat
	c.StreamOpenTimeout = 3 * heartbeat
	c.AcceptBacklog = 1024
	c.LogOutput = nil
	c.Logger = discardLogger{}
	return c
}

type discardLogger struct{}

func (discardLogger) Print(...any)          {}
func (discardLogger) Printf(string, ...any) {}
func (discardLogger) Println(...any)        {}

// quicSession is one QUIC connection. On the backend, which dials each
// connection from a socket of its own, release closes that transport and
// socket once the connection is closed; on the gateway the transport is
// the Serve loop's and release is nil.
type quicSession struct {
	c       *quic.Conn
	release func()
	once    sync.Once
}

func (s *quicSession) Open(ctx context.Context) (net.Conn, error) {
	st, err := s.c.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	return &quicStream{st, s.c}, nil
}

func (s *quicSession) Accept(ctx context.Context) (net.Conn, error) {
	st, err := s.c.AcceptStream(ctx)
	if err != nil {
		return nil, err
	}
	return &quicStream{st, s.c}, nil
}

// Close closes the connection (quic-go returns once it has ended) and
// then what it had alone.
func (s *quicSession) Close() error {
	err := s.c.CloseWithError(0, "closed")
	if s.release != nil {
		s.once.Do(s.release)
	}
	return err
}

func (s *quicSession) Done() <-chan struct{}    { return s.c.Context().Done() }
func (s *quicSession) Transport() Transport     { return TransportQUIC }
func (s *quicSession) TLS() tls.ConnectionState { return s.c.ConnectionState().TLS }
func (s *quicSession) RemoteAddr() net.Addr     { return s.c.RemoteAddr() }

// quicStream is a QUIC stream as a net.Conn. Close closes both
// directions; CloseWrite only the sending one.
type quicStream struct {
	*quic.Stream
	c *quic.Conn
}

func (s *quicStream) Close() error {
	s.CancelRead(0)
	return s.Stream.Close()
}
func (s *quicStream) CloseWrite() error    { return s.Stream.Close() }
func (s *quicStream) LocalAddr() net.Addr  { return s.c.LocalAddr() }
func (s *quicStream) RemoteAddr() net.Addr { return s.c.RemoteAddr() }

type yamuxSession struct {
	s   *yamux.Session
	tls *tls.Conn
}

func (s *yamuxSession) Open(ctx context.Context) (net.Conn, error) {
	st, err := s.s.OpenStream()
	if err != nil {
		return nil, err
	}
	return yamuxStream{st}, nil
}

// Accept waits for the peer's next stream. yamux cannot cancel an
// accept alone: when ctx ends the session is given up, and Accept
// returns once its accepting goroutine has.
func (s *yamuxSession) Accept(ctx context.Context) (net.Conn, error) {
	type res struct {
		c   net.Conn
		err error
	}
	ch := make(chan res, 1)
	go func() {
		st, err := s.s.AcceptStream()
		if err != nil {
			ch <- res{nil, err}
			return
		}
		ch <- res{yamuxStream{st}, nil}
	}()
	select {
	case r := <-ch:
		return r.c, r.err
	case <-ctx.Done():
		s.s.Close()
		if r := <-ch; r.c != nil {
			r.c.Close()
		}
		return nil, ctx.Err()
	}
}

func (s *yamuxSession) Close() error             { return s.s.Close() }
func (s *yamuxSession) Done() <-chan struct{}    { return s.s.CloseChan() }
func (s *yamuxSession) Transport() Transport     { return TransportTCP }
func (s *yamuxSession) TLS() tls.ConnectionState { return s.tls.ConnectionState() }
func (s *yamuxSession) RemoteAddr() net.Addr     { return s.tls.RemoteAddr() }

// yamuxStream adds CloseWrite: yamux's Close is already a half-close
// (FIN); the stream is released when both sides closed.
type yamuxStream struct{ *yamux.Stream }

func (s yamuxStream) CloseWrite() error { return s.Stream.Close() }

// setUDPBuffers asks for big socket buffers so QUIC is not starved; the
// kernel may clamp them to net.core.rmem_max, which costs speed only.
func setUDPBuffers(pc net.PacketConn) {
	if u, ok := pc.(*net.UDPConn); ok {
		_ = u.SetReadBuffer(udpBuffer)
		_ = u.SetWriteBuffer(udpBuffer)
	}
}

// dialQUIC dials a QUIC session from a socket of its own, read through
// rxConn; closing the session closes the socket.
func dialQUIC(ctx context.Context, addr string, tc *tls.Config, qc *quic.Config) (*quicSession, error) {
	ua, err := net.ResolveUDPAddr("udp", addr)
	if err != nil {
		return nil, err
	}
	u, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4zero})
	if err != nil {
		return nil, err
	}
	rx := newRxConn(u)
	tr := &quic.Transport{Conn: rx}
	release := func() {
		tr.Close()
		u.Close()
		rx.wait()
	}
	c, err := tr.Dial(ctx, ua, tc, qc)
	if err != nil {
		release()
		return nil, err
	}
	rx.track(c)
	return &quicSession{c: c, release: release}, nil
}

// quicTransport is the gateway's QUIC transport on pc, read through
// rxConn when pc is a *net.UDPConn (rx is nil otherwise). Closing the
// transport closes its listener and connections, not pc.
func quicTransport(pc net.PacketConn) (*quic.Transport, *rxConn) {
	u, ok := pc.(*net.UDPConn)
	if !ok {
		return &quic.Transport{Conn: pc}, nil
	}
	rx := newRxConn(u)
	return &quic.Transport{Conn: rx}, rx
}

// quic-go reads a socket on one goroutine and hands each datagram to its
// connection's run loop through a queue of at most 256 packets
// (protocol.MaxConnUnprocessedPackets); what does not fit is dropped
// with reason dos_prevention. The reader is far cheaper per packet than
// the run loop, and when both are on one core (the runtime trace shows
// the run loop runnable but not running while the reader drains ~280
// datagrams) a burst of a few hundred packets overflows the queue
// although the kernel delivered every one (8 MiB buffer, UdpRcvbufErrors
// 0). quic-go's pacer sends such bursts: in slow start up to 2 ms at
// twice cwnd/RTT, which is 300–500 datagrams at 20 ms. In the 20 ms bench
// receivers dropped 500–2500 packets a run this way, the first at
// 230–400 ms with cwnd 2–4 MB, and each was a loss to the sender. After a
// loss quic-go's Cubic barely grows the window at 20 ms (pacing keeps
// bytes in flight more than 3 packets below it on 96% of ACKs, which
// counts as application-limited and restarts Cubic's epoch): about one
// packet per 5 round trips, so 0.3–0.5 Gbit/s for the whole run.
//
// rxConn is the socket as quic-go sees it: before each batch read it
// waits while more than rxBacklog datagrams are handed over and not yet
// processed, so a burst waits in the kernel's buffer instead. The
// connections count what they processed (ConnectionStats().
// PacketsReceived); one of them sending (an ACK, data) is the cue to look
// again. A backlog that lasts rxHold is no burst but a receiver that
// cannot keep up: then it reads on and quic-go drops, as before, so that
// the sender sees loss rather than an ever longer queue.
const (
	rxBacklog = 192 // datagrams quic-go may hold unprocessed; it drops past 256
	rxQueue   = 256
	rxHold    = 10 * time.Millisecond
	rxIdle    = 50 * time.Millisecond // nothing processed for this long: nothing is queued
)

// rxConn wraps a UDP socket for a quic.Transport. quic-go calls ReadBatch
// from its one reading goroutine only, which owns the unlocked fields.
type rxConn struct {
	*net.UDPConn
	batch    *ipv4.PacketConn
	progress chan struct{} // a connection on the socket sent a datagram
	timer    *time.Timer

	read      int64     // 1-RTT datagrams handed to quic-go
	skew      int64     // of those, the ones no connection will count
	seen      int64     // processed count when it last moved
	moved     time.Time // when it last moved
	heldSince time.Time // when the backlog last went above rxBacklog
	bound     int64     // the backlog at the last count plus datagrams read since

	mu    sync.Mutex
	conns map[*quic.Conn]struct{}
	gone  int64          // packets processed by connections that have ended
	wg    sync.WaitGroup // track's goroutines
}

func newRxConn(u *net.UDPConn) *rxConn {
	t := time.NewTimer(time.Hour)
	t.Stop()
	return &rxConn{
		UDPConn:  u,
		batch:    ipv4.NewPacketConn(u),
		progress: make(chan struct{}, 1),
		timer:    t,
		conns:    make(map[*quic.Conn]struct{}),
	}
}

// track counts the packets c processes, until it ends.
func (r *rxConn) track(c *quic.Conn) {
	r.mu.Lock()
	r.conns[c] = struct{}{}
	r.mu.Unlock()
	r.wg.Go(func() {
		<-c.Context().Done()
		r.mu.Lock()
		delete(r.conns, c)
		r.gone += int64(c.ConnectionStats().PacketsReceived)
		r.mu.Unlock()
	})
}

// wait returns once every tracked connection has ended and been counted
// out; the transport's Close ends them.
func (r *rxConn) wait() { r.wg.Wait() }

// backlog estimates how many datagrams handed to quic-go wait unprocessed.
func (r *rxConn) backlog(now time.Time) int64 {
	r.mu.Lock()
	p, n := r.gone, len(r.conns)
	for c := range r.conns {
		p += int64(c.ConnectionStats().PacketsReceived)
	}
	r.mu.Unlock()
	if p != r.seen {
		r.seen, r.moved = p, now
	}
	b := r.read - r.skew - p
	most := int64(rxQueue * max(n, 1))
	switch {
	case b < 0: // counted by a connection only: handshake, coalesced packets
		r.skew += b
		b = 0
	case b > most: // more than quic-go holds: it dropped the rest
		r.skew += b - most
		b = most
	case b > 0 && now.Sub(r.moved) > rxIdle: // stray or late datagrams
		r.skew += b
		b = 0
	}
	return b
}

// admit waits, for at most rxHold in a row, until quic-go has room for
// another batch.
func (r *rxConn) admit() {
	// Counting asks every connection on the socket; skip it while the
	// backlog cannot have grown past the mark since the last count.
	if r.bound <= rxBacklog {
		return
	}
	now := time.Now()
	if r.bound = r.backlog(now); r.bound <= rxBacklog {
		r.heldSince = time.Time{}
		return
	}
	if r.heldSince.IsZero() {
		r.heldSince = now
	}
	wait := r.heldSince.Add(rxHold).Sub(now)
	if wait <= 0 {
		return
	}
	r.timer.Reset(wait)
	defer r.timer.Stop()
	for {
		select {
		case <-r.progress:
		case <-r.timer.C:
			return
		}
		if r.bound = r.backlog(time.Now()); r.bound <= rxBacklog {
			r.heldSince = time.Time{}
			return
		}
	}
}

// ReadBatch is what quic-go reads the socket with (its batchConn).
func (r *rxConn) ReadBatch(ms []ipv4.Message, flags int) (int, error) {
	r.admit()
	n, err := r.batch.ReadBatch(ms, flags)
	if err != nil {
		return n, err
	}
	for _, m := range ms[:n] {
		if m.N > 0 && m.Buffers[0][0]&0x80 == 0 { // short header: an established connection's
			r.read++
			r.bound++
		}
	}
	return n, nil
}

// WriteMsgUDP is how quic-go sends; a connection that sends is running.
func (r *rxConn) WriteMsgUDP(b, oob []byte, addr *net.UDPAddr) (int, int, error) {
	n, oobn, err := r.UDPConn.WriteMsgUDP(b, oob, addr)
	select {
	case r.progress <- struct{}{}:
	default:
	}
	return n, oobn, err
}

// clientTLS is the backend's side: it presents its own key and accepts
// only a gateway whose certificate carries the pinned key. There is no CA;
// the pin replaces chain verification.
func clientTLS(key identity.PrivateKey, gateway identity.PublicKey) (*tls.Config, error) {
	cert, err := key.TLSCertificate()
	if err != nil {
		return nil, fmt.Errorf("tunnel: backend certificate: %w", err)
	}
	return &tls.Config{
		MinVersion:         tls.VersionTLS13,
		Certificates:       []tls.Certificate{cert},
		NextProtos:         []string{alpn},
		ServerName:         "zgtunnel",
		InsecureSkipVerify: true, // the key pin below is the verification
		VerifyPeerCertificate: func(raw [][]byte, _ [][]*x509.Certificate) error {
			got, err := identity.CertificateKey(raw)
			if err != nil {
				return err
			}
			if !got.Equal(gateway) {
				return fmt.Errorf("%w: gateway presented %s, pinned %s", ErrWrongGateway, got, gateway)
			}
			return nil
		},
	}, nil
}
