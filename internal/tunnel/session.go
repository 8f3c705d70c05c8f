package tunnel

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"time"

	"github.com/hashicorp/yamux"
	"github.com/quic-go/quic-go"

	"github.com/zerogrid/zerogrid/internal/identity"
)

// Flow control: one stream may have 16 MiB in flight, so it keeps about
// 6 Gbit/s at 20 ms round trip (window ÷ RTT); yamux's 256 KiB default
// would cap it near 0.1 Gbit/s.
const (
	streamWindow = 16 << 20
	connWindow   = 64 << 20
	udpBuffer    = 8 << 20
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
		MaxStreamReceiveWindow:     streamWindow,
		MaxConnectionReceiveWindow: connWindow,
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

type quicSession struct{ c *quic.Conn }

func (s quicSession) Open(ctx context.Context) (net.Conn, error) {
	st, err := s.c.OpenStreamSync(ctx)
	if err != nil {
		return nil, err
	}
	return &quicStream{st, s.c}, nil
}

func (s quicSession) Accept(ctx context.Context) (net.Conn, error) {
	st, err := s.c.AcceptStream(ctx)
	if err != nil {
		return nil, err
	}
	return &quicStream{st, s.c}, nil
}

func (s quicSession) Close() error             { return s.c.CloseWithError(0, "closed") }
func (s quicSession) Done() <-chan struct{}    { return s.c.Context().Done() }
func (s quicSession) Transport() Transport     { return TransportQUIC }
func (s quicSession) TLS() tls.ConnectionState { return s.c.ConnectionState().TLS }
func (s quicSession) RemoteAddr() net.Addr     { return s.c.RemoteAddr() }

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

func (s yamuxSession) Open(ctx context.Context) (net.Conn, error) {
	st, err := s.s.OpenStream()
	if err != nil {
		return nil, err
	}
	return yamuxStream{st}, nil
}

func (s yamuxSession) Accept(ctx context.Context) (net.Conn, error) {
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
		s.s.Close() // Accept cannot be cancelled alone; the session is given up
		return nil, ctx.Err()
	}
}

func (s yamuxSession) Close() error             { return s.s.Close() }
func (s yamuxSession) Done() <-chan struct{}    { return s.s.CloseChan() }
func (s yamuxSession) Transport() Transport     { return TransportTCP }
func (s yamuxSession) TLS() tls.ConnectionState { return s.tls.ConnectionState() }
func (s yamuxSession) RemoteAddr() net.Addr     { return s.tls.RemoteAddr() }

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
