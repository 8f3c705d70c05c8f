package overlay

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.zx2c4.com/wireguard/conn/bindtest"
	"golang.zx2c4.com/wireguard/tun/tuntest"

	"github.com/zerogrid/zerogrid/internal/identity"
)

// fakeClock is a Clock that moves only when Advance is called.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []fakeTimer
}

type fakeTimer struct {
	at time.Time
	c  chan time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{now: time.Now()} }

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	ch := make(chan time.Time, 1)
	c.mu.Lock()
	defer c.mu.Unlock()
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.timers = append(c.timers, fakeTimer{c.now.Add(d), ch})
	return ch
}

// waitTimer waits up to a second (real time) until some goroutine waits
// for a timer at least min ahead, e.g. a loop for its next round.
func (c *fakeClock) waitTimer(t testing.TB, min time.Duration) {
	t.Helper()
	ok := waitFor(time.Second, nil, func() bool {
		c.mu.Lock()
		defer c.mu.Unlock()
		for _, tm := range c.timers {
			if tm.at.Sub(c.now) >= min {
				return true
			}
		}
		return false
	})
	if !ok {
		t.Fatalf("nothing waits for %s or more", min)
	}
}

// Advance moves the clock by d and fires the timers due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.timers[:0]
	for _, t := range c.timers {
		if t.at.After(c.now) {
			kept = append(kept, t)
			continue
		}
		t.c <- c.now
	}
	clear(c.timers[len(kept):])
	c.timers = kept
}

// memNode is one node whose overlay runs on wireguard-go's in-process
// TUN and bind: what the kernel would deliver to the node is on recv
// (key-exchange datagrams go to the exchange's socket instead).
type memNode struct {
	id   identity.PrivateKey
	ov   *Overlay
	tun  *tuntest.ChannelTUN
	ctrl *memConn
	recv chan []byte
	ep   netip.AddrPort // where its peer reaches it through the bind
}

func (n *memNode) peer() Peer {
	return Peer{Identity: n.id.Public(), Key: n.ov.PublicKey(), Endpoint: n.ep}
}

// memConn is the key exchange's socket on a memNode: datagrams written
// become IPv6 packets the TUN hands to WireGuard.
type memConn struct {
	self   netip.Addr
	tun    *tuntest.ChannelTUN
	rx     chan memDatagram
	closed chan struct{}
	once   sync.Once
}

type memDatagram struct {
	from netip.AddrPort
	b    []byte
}

func (c *memConn) ReadFromUDPAddrPort(b []byte) (int, netip.AddrPort, error) {
	select {
	case d := <-c.rx:
		return copy(b, d.b), d.from, nil
	case <-c.closed:
		return 0, netip.AddrPort{}, net.ErrClosed
	}
}

func (c *memConn) WriteToUDPAddrPort(b []byte, to netip.AddrPort) (int, error) {
	select {
	case c.tun.Outbound <- udp6(netip.AddrPortFrom(c.self, ControlPort), to, b):
		return len(b), nil
	case <-c.closed:
		return 0, net.ErrClosed
	}
}

func (c *memConn) Close() error {
	c.once.Do(func() { close(c.closed) })
	return nil
}

// udp6 builds an IPv6 UDP packet (checksum included).
func udp6(src, dst netip.AddrPort, payload []byte) []byte {
	p := make([]byte, 48+len(payload))
	p[0] = 0x60
	binary.BigEndian.PutUint16(p[4:], uint16(8+len(payload)))
	p[6], p[7] = 17, 64
	s, d := src.Addr().As16(), dst.Addr().As16()
	copy(p[8:], s[:])
	copy(p[24:], d[:])
	binary.BigEndian.PutUint16(p[40:], src.Port())
	binary.BigEndian.PutUint16(p[42:], dst.Port())
	binary.BigEndian.PutUint16(p[44:], uint16(8+len(payload)))
	copy(p[48:], payload)
	var sum uint32
	add := func(b []byte) {
		for i := 0; i+1 < len(b); i += 2 {
			sum += uint32(binary.BigEndian.Uint16(b[i:]))
		}
		if len(b)%2 == 1 {
			sum += uint32(b[len(b)-1]) << 8
		}
	}
	add(p[8:40])
	sum += uint32(8+len(payload)) + 17
	add(p[40:])
	for sum > 0xffff {
		sum = sum>>16 + sum&0xffff
	}
	binary.BigEndian.PutUint16(p[46:], ^uint16(sum))
	return p
}

// parseUDP6 returns the addresses and payload of an IPv6 UDP packet.
func parseUDP6(p []byte) (src, dst netip.AddrPort, payload []byte, ok bool) {
	if len(p) < 48 || p[0]>>4 != 6 || p[6] != 17 {
		return src, dst, nil, false
	}
	src = netip.AddrPortFrom(netip.AddrFrom16([16]byte(p[8:24])), binary.BigEndian.Uint16(p[40:]))
	dst = netip.AddrPortFrom(netip.AddrFrom16([16]byte(p[24:40])), binary.BigEndian.Uint16(p[42:]))
	return src, dst, p[48:], true
}

// newMemPair makes two in-process overlays joined by wireguard-go's
// channel binds and peered with each other; set adjusts each Config (i is
// 0 or 1). Everything is closed at cleanup.
func newMemPair(t testing.TB, set func(i int, c *Config)) [2]*memNode {
	t.Helper()
	nodes := newMemNodes(t, set)
	for i, n := range nodes {
		if err := n.ov.SetPeers(context.Background(), []Peer{nodes[1-i].peer()}); err != nil {
			t.Fatal(err)
		}
	}
	return nodes
}

// newMemNodes is newMemPair without the peering.
func newMemNodes(t testing.TB, set func(i int, c *Config)) [2]*memNode {
	t.Helper()
	prefix, _ := Prefix("overlay-test")
	binds := bindtest.NewChannelBinds()
	var nodes [2]*memNode
	for i := range 2 {
		id, err := identity.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		// Each bind sends to the other when given the other's target
		// port: 1 (bind 0 to bind 1) and 2 (bind 1 to bind 0).
		n := &memNode{id: id, tun: tuntest.NewChannelTUN(), recv: make(chan []byte, 4096),
			ep: netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), uint16(2-i))}
		cfg := Config{Identity: id, Prefix: prefix, Rotate: time.Hour, Logger: testLogger(t, i)}
		if set != nil {
			set(i, &cfg)
		}
		_, pub, err := DeriveKey(id)
		if err != nil {
			t.Fatal(err)
		}
		self, _ := Addr(prefix, pub)
		n.ctrl = &memConn{self: self, tun: n.tun, rx: make(chan memDatagram, 64), closed: make(chan struct{})}
		if n.ov, err = newInProcess(cfg, n.tun.TUN(), binds[i], n.ctrl); err != nil {
			t.Fatal(err)
		}
		var wg sync.WaitGroup
		done := make(chan struct{})
		wg.Go(func() { n.dispatch(done) })
		t.Cleanup(func() { n.ov.Close(); close(done); wg.Wait() })
		nodes[i] = n
	}
	return nodes
}

// testLogger discards the overlay's log, or with ZG_OVERLAY_DEBUG set
// writes it at debug level to the test's log.
func testLogger(t testing.TB, i int) *slog.Logger {
	if os.Getenv("ZG_OVERLAY_DEBUG") == "" {
		return slog.New(slog.DiscardHandler)
	}
	w := &tlogWriter{t: t}
	t.Cleanup(func() { w.mu.Lock(); w.done = true; w.mu.Unlock() })
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelDebug})).With("node", i)
}

// tlogWriter writes to a test's log until the test ends (WireGuard's
// workers may log a line after the device closed).
type tlogWriter struct {
	t    testing.TB
	mu   sync.Mutex
	done bool
}

func (w *tlogWriter) Write(b []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if !w.done {
		w.t.Log(strings.TrimSpace(string(b)))
	}
	return len(b), nil
}

// dispatch hands what WireGuard delivers to the node's "kernel" to the
// exchange's socket or to recv, until done is closed.
func (n *memNode) dispatch(done <-chan struct{}) {
	for {
		var p []byte
		select {
		case p = <-n.tun.Inbound:
		case <-done:
			return
		}
		src, dst, payload, ok := parseUDP6(p)
		if ok && dst == netip.AddrPortFrom(n.ov.Address(), ControlPort) {
			select {
			case n.ctrl.rx <- memDatagram{src, payload}:
			default:
			}
			continue
		}
		select {
		case n.recv <- p:
		default:
		}
	}
}

// send puts a UDP datagram from src (an address of from's) to dst into
// from's TUN, as an application on the node would.
func (n *memNode) send(t testing.TB, src, dst netip.AddrPort, payload []byte) {
	t.Helper()
	select {
	case n.tun.Outbound <- udp6(src, dst, payload):
	case <-time.After(5 * time.Second):
		t.Fatal("the device does not read its TUN")
	}
}

// receive reports whether n receives a datagram with payload within d.
func (n *memNode) receive(payload []byte, d time.Duration) bool {
	deadline := time.After(d)
	for {
		select {
		case p := <-n.recv:
			if _, _, got, ok := parseUDP6(p); ok && bytes.Equal(got, payload) {
				return true
			}
		case <-deadline:
			return false
		}
	}
}

// reaches reports whether a datagram from a's overlay address reaches b's
// within d, sending again every 100 ms.
func reaches(t testing.TB, a, b *memNode, d time.Duration) bool {
	t.Helper()
	msg := make([]byte, 16)
	rand.Read(msg)
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		a.send(t, netip.AddrPortFrom(a.ov.Address(), 7), netip.AddrPortFrom(b.ov.Address(), 7), msg)
		if b.receive(msg, 100*time.Millisecond) {
			return true
		}
	}
	return false
}

// roles returns the pair's initiator and responder.
func roles(n [2]*memNode) (ini, resp *memNode) {
	if n[0].ov.psk.initiates(n[1].id.Public()) {
		return n[0], n[1]
	}
	return n[1], n[0]
}

// agreed returns the pre-shared key both nodes hold, zero if they differ.
func agreed(n [2]*memNode) Key {
	a, _ := n[0].ov.PresharedKey(n[1].ov.PublicKey())
	b, _ := n[1].ov.PresharedKey(n[0].ov.PublicKey())
	if a != b {
		return Key{}
	}
	return a
}

// waitFor polls cond every 10 ms for up to d, calling step (e.g. to move
// a fake clock) before each poll; it reports whether cond held.
func waitFor(d time.Duration, step func(), cond func() bool) bool {
	deadline := time.Now().Add(d)
	for {
		if step != nil {
			step()
		}
		if cond() {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}
