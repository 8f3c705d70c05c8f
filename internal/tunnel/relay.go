package tunnel

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"github.com/pires/go-proxyproto"
)

const (
	defaultHeartbeat = 10 * time.Second
	headerTimeout    = 10 * time.Second
	targetTimeout    = 5 * time.Second
	openTimeout      = 5 * time.Second // stream header to answer, at the gateway
)

// Stream answers: the backend's first byte on each stream.
const (
	streamOK       byte = 0 // target connected; bytes follow both ways
	streamNoTarget byte = 1 // the backend could not reach its target
)

// relay serves one stream the gateway opened: it reads the header, dials
// the route's target, writes PROXY v2 when asked, and copies both ways.
func (c *Client) relay(ctx context.Context, st net.Conn, served map[string]Route) {
	defer st.Close()
	st.SetReadDeadline(time.Now().Add(headerTimeout))
	h, client, err := decodeStreamHeader(st)
	if err != nil {
		c.log.Warn("bad stream from gateway", "err", err)
		return
	}
	st.SetReadDeadline(time.Time{})
	r, ok := served[h.Name]
	if !ok {
		c.log.Warn("gateway opened a stream for a name this tunnel does not serve", "name", h.Name)
		return
	}
	var d net.Dialer
	dctx, cancel := context.WithTimeout(ctx, targetTimeout)
	tc, err := d.DialContext(dctx, "tcp", r.Target)
	cancel()
	if err != nil {
		c.log.Warn("dial target", "name", h.Name, "target", r.Target, "err", err)
		st.Write([]byte{streamNoTarget})
		return
	}
	defer tc.Close()
	if r.ProxyProtocol {
		if _, err := proxyHeader(client, tc.RemoteAddr()).WriteTo(tc); err != nil {
			c.log.Warn("write PROXY header", "name", h.Name, "err", err)
			st.Write([]byte{streamNoTarget})
			return
		}
	}
	if _, err := st.Write([]byte{streamOK}); err != nil {
		return
	}
	pipe(st, tc)
}

// proxyHeader is a PROXY v2 header naming the public client as source and
// the target as destination; LOCAL when the client is unknown.
func proxyHeader(client netip.AddrPort, target net.Addr) *proxyproto.Header {
	dst, _ := target.(*net.TCPAddr)
	if !client.IsValid() || dst == nil {
		return &proxyproto.Header{Version: 2, Command: proxyproto.LOCAL, TransportProtocol: proxyproto.UNSPEC}
	}
	src := net.TCPAddrFromAddrPort(netip.AddrPortFrom(client.Addr().Unmap(), client.Port()))
	dip, _ := netip.AddrFromSlice(dst.IP)
	dip = dip.Unmap()
	if client.Addr().Unmap().Is4() != dip.Is4() { // families must match
		if client.Addr().Unmap().Is4() {
			dip = netip.IPv4Unspecified()
		} else {
			dip = netip.IPv6Unspecified()
		}
	}
	return proxyproto.HeaderProxyFromAddrs(2, src, net.TCPAddrFromAddrPort(netip.AddrPortFrom(dip, uint16(dst.Port))))
}

type closeWriter interface{ CloseWrite() error }

// pipe copies both ways, passing each half-close on, and returns when
// both directions are done.
func pipe(a, b net.Conn) {
	var wg sync.WaitGroup
	one := func(dst, src net.Conn) {
		defer wg.Done()
		_, err := io.Copy(dst, src)
		if cw, ok := dst.(closeWriter); ok && err == nil {
			cw.CloseWrite()
		} else {
			dst.Close()
			src.Close()
		}
	}
	wg.Add(2)
	go one(a, b)
	go one(b, a)
	wg.Wait()
}

// past is a deadline already passed: a read blocked on the connection
// returns at once.
var past = time.Unix(1, 0)

// heartbeat is the backend's half: it pings on the control stream every
// interval on the clock and fails at the first tick at which no pong has
// arrived for three intervals. It returns nil when ctx ends.
func heartbeat(ctx context.Context, ctrl net.Conn, interval time.Duration, clock Clock) error {
	var last atomic.Int64 // when the last pong arrived, unix ns on the clock
	last.Store(clock.Now().UnixNano())
	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		errc <- readCtrl(ctrl, framePong, "gateway", func(ctrlFrame) error {
			last.Store(clock.Now().UnixNano())
			return nil
		})
	}()
	defer func() { ctrl.SetReadDeadline(past); <-done }()
	for seq := uint64(1); ; seq++ {
		ctrl.SetWriteDeadline(time.Now().Add(3 * interval)) // a socket deadline: real time
		if err := writeFrame(ctrl, ctrlFrame{Type: framePing, Seq: seq}); err != nil {
			return fmt.Errorf("heartbeat: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case err := <-errc:
			return err
		case <-clock.After(interval):
		}
		if clock.Now().Sub(time.Unix(0, last.Load())) >= 3*interval {
			return fmt.Errorf("heartbeat: no pong in %s", 3*interval)
		}
	}
}

// answerPings is the gateway's half: it answers every ping and fails at
// the first tick (every interval on the clock) at which no ping has
// arrived for three intervals.
func answerPings(ctrl net.Conn, interval time.Duration, clock Clock) error {
	var last atomic.Int64 // when the last ping arrived, unix ns on the clock
	last.Store(clock.Now().UnixNano())
	errc := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		defer close(done)
		errc <- readCtrl(ctrl, framePing, "backend", func(f ctrlFrame) error {
			last.Store(clock.Now().UnixNano())
			ctrl.SetWriteDeadline(time.Now().Add(3 * interval)) // a socket deadline: real time
			return writeFrame(ctrl, ctrlFrame{Type: framePong, Seq: f.Seq})
		})
	}()
	defer func() { ctrl.SetReadDeadline(past); <-done }()
	for {
		select {
		case err := <-errc:
			return err
		case <-clock.After(interval):
		}
		if clock.Now().Sub(time.Unix(0, last.Load())) >= 3*interval {
			return fmt.Errorf("heartbeat: no ping in %s", 3*interval)
		}
	}
}

// readCtrl reads heartbeat frames of type want from the peer, calling
// got for each, until the stream or got fails. Any other frame type is a
// protocol error.
func readCtrl(ctrl net.Conn, want uint8, peer string, got func(ctrlFrame) error) error {
	for {
		var f ctrlFrame
		if err := readFrame(ctrl, maxFrame, &f); err != nil {
			if errors.Is(err, io.EOF) {
				return fmt.Errorf("%s closed the tunnel", peer)
			}
			return fmt.Errorf("heartbeat: %w", err)
		}
		if f.Type != want {
			return fmt.Errorf("%w: control frame type %d from %s", ErrProtocol, f.Type, peer)
		}
		if err := got(f); err != nil {
			return fmt.Errorf("heartbeat: %w", err)
		}
	}
}
