package tunnel

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pires/go-proxyproto"

	"github.com/zerogrid/zerogrid/internal/identity"
)

func TestAuthorizedKeyServes(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		quicOn bool
		want   Transport
	}{
		{"quic", true, TransportQUIC},
		{"tcp fallback when UDP gets no answer", false, TransportTCP},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			backend := newKey(t)
			gw := startGateway(t, &holders{m: map[string][]identity.PublicKey{"web": {backend.Public()}}}, tc.quicOn, 0)
			c, _ := runClient(t, ClientConfig{
				Key:           backend,
				Names:         []Route{{Name: "web", Target: echoTarget(t, "b1")}},
				Gateways:      []Gateway{{Addr: gw.addr, Key: gw.key.Public()}},
				FallbackAfter: 500 * time.Millisecond,
			})
			waitFor(t, "tunnel up", 10*time.Second, connected(c, tc.want))
			if m, ok := gw.srv.Mode("web"); !ok || m != ModeHTTP {
				t.Fatalf("Mode(web) = %v, %v", m, ok)
			}
			if id, err := roundTrip(t, gw.srv, "web", "hello through the tunnel"); err != nil || id != "b1" {
				t.Fatalf("round trip: %q, %v", id, err)
			}
			if _, err := gw.srv.Dial(context.Background(), "other", StreamMeta{}); !errors.Is(err, ErrNoBackend) {
				t.Fatalf("Dial(unknown name) = %v, want ErrNoBackend", err)
			}
		})
	}
}

func TestUnauthorizedNameRefusedWithReason(t *testing.T) {
	t.Parallel()
	backend, other := newKey(t), newKey(t)
	gw := startGateway(t, &holders{m: map[string][]identity.PublicKey{
		"mine": {backend.Public()}, "theirs": {other.Public()},
	}}, true, 0)
	c, _ := runClient(t, ClientConfig{
		Key: backend,
		Names: []Route{
			{Name: "mine", Target: echoTarget(t, "b1")},
			{Name: "theirs", Target: echoTarget(t, "b1"), Mode: ModePassthrough},
		},
		Gateways: []Gateway{{Addr: gw.addr, Key: gw.key.Public()}},
	})
	waitFor(t, "tunnel up", 10*time.Second, connected(c, ""))
	st := c.Status()[0]
	if r := st.Refused["theirs"]; !strings.Contains(r, "not held by key") {
		t.Fatalf("refusal reason for theirs = %q", r)
	}
	if _, ok := st.Refused["mine"]; ok {
		t.Fatal("authorized name reported refused")
	}
	if _, ok := gw.srv.Mode("theirs"); ok {
		t.Fatal("refused name is served")
	}
	if _, err := gw.srv.Dial(context.Background(), "theirs", StreamMeta{}); !errors.Is(err, ErrNoBackend) {
		t.Fatalf("Dial(theirs) = %v", err)
	}
	if _, err := roundTrip(t, gw.srv, "mine", "x"); err != nil {
		t.Fatal(err)
	}

	// A backend whose every name is refused never comes up and says why.
	c2, _ := runClient(t, ClientConfig{
		Key:      other,
		Names:    []Route{{Name: "mine", Target: echoTarget(t, "b2")}},
		Gateways: []Gateway{{Addr: gw.addr, Key: gw.key.Public()}},
	})
	waitFor(t, "refusal", 10*time.Second, func() bool { return c2.Status()[0].Reconnects > 0 })
	st = c2.Status()[0]
	if st.Connected || !strings.Contains(st.LastError, "refused") || !strings.Contains(st.LastError, "not held by key") {
		t.Fatalf("status %+v", st)
	}
}

// TestRefusalsBackOff: a backend the gateway refuses tries again after
// the jittered exponential backoff on its clock (250 ms doubling per
// failure, capped at MaxBackoff, drawn from the upper half of the step),
// never sooner.
func TestRefusalsBackOff(t *testing.T) {
	t.Parallel()
	clk := newFakeClock()
	backend, key := newKey(t), newKey(t)
	srv, err := NewServer(ServerConfig{Key: key, Logger: testLogger(t), Clock: clk, Authorizer: &holders{}})
	if err != nil {
		t.Fatal(err)
	}
	gw := serveOn(t, srv, key, "127.0.0.1", true)
	const limit = 30 * time.Second
	c, _ := runClient(t, ClientConfig{
		Key:      backend,
		Names:    []Route{{Name: "web", Target: echoTarget(t, "b")}},
		Gateways: []Gateway{{Addr: gw.addr, Key: gw.key.Public()}},
		Clock:    clk, MaxBackoff: limit,
	})
	for n := 1; n <= 10; n++ {
		waitFor(t, fmt.Sprintf("refusal %d", n), 10*time.Second, func() bool {
			return c.Status()[0].Reconnects == n && len(clk.Pending()) == 1
		})
		if st := c.Status()[0]; st.Connected || !strings.Contains(st.LastError, "refused") {
			t.Fatalf("after refusal %d: %+v", n, st)
		}
		step := min(250*time.Millisecond<<(n-1), limit)
		d := clk.Pending()[0]
		if d < step/2 || d > step {
			t.Fatalf("wait after refusal %d: %v, want between %v and %v", n, d, step/2, step)
		}
		clk.Advance(d - time.Millisecond)
		if len(clk.Pending()) != 1 {
			t.Fatalf("the wait after refusal %d ended %v early", n, time.Millisecond)
		}
		clk.Advance(time.Millisecond)
	}
}

func TestWrongGatewayKeyRefusedByBackend(t *testing.T) {
	t.Parallel()
	backend := newKey(t)
	gw := startGateway(t, &holders{m: map[string][]identity.PublicKey{"web": {backend.Public()}}}, true, 0)
	for _, quicOn := range []bool{true, false} {
		c, _ := runClient(t, ClientConfig{
			Key:           backend,
			Names:         []Route{{Name: "web", Target: echoTarget(t, "b1")}},
			Gateways:      []Gateway{{Addr: gw.addr, Key: newKey(t).Public()}},
			FallbackAfter: 500 * time.Millisecond,
		})
		waitFor(t, "failed attempt", 10*time.Second, func() bool { return c.Status()[0].Reconnects > 0 })
		st := c.Status()[0]
		if st.Connected || !strings.Contains(st.LastError, "does not match the pinned key") {
			t.Fatalf("quic=%v: status %+v", quicOn, st)
		}
	}
	if _, ok := gw.srv.Mode("web"); ok {
		t.Fatal("gateway registered a backend that refused it")
	}
}

func TestTwoBackendsFailover(t *testing.T) {
	t.Parallel()
	b1, b2 := newKey(t), newKey(t)
	gw := startGateway(t, &holders{m: map[string][]identity.PublicKey{"web": {b1.Public(), b2.Public()}}}, true, 0)
	start := func(k identity.PrivateKey, id string) (*Client, func()) {
		return runClient(t, ClientConfig{
			Key:      k,
			Names:    []Route{{Name: "web", Target: echoTarget(t, id)}},
			Gateways: []Gateway{{Addr: gw.addr, Key: gw.key.Public()}},
		})
	}
	c1, stop1 := start(b1, "b1")
	c2, _ := start(b2, "b2")
	waitFor(t, "both tunnels", 10*time.Second, func() bool { return connected(c1, "")() && connected(c2, "")() })
	seen := map[string]int{}
	for range 10 {
		id, err := roundTrip(t, gw.srv, "web", "ping")
		if err != nil {
			t.Fatal(err)
		}
		seen[id]++
	}
	if seen["b1"] == 0 || seen["b2"] == 0 {
		t.Fatalf("streams not spread over both backends: %v", seen)
	}
	stop1()
	for i := range 20 {
		id, err := roundTrip(t, gw.srv, "web", "ping")
		if err != nil || id != "b2" {
			t.Fatalf("request %d after b1 stopped: %q, %v", i, id, err)
		}
	}
}

func TestManyConcurrentStreams(t *testing.T) {
	t.Parallel()
	for _, quicOn := range []bool{true, false} {
		t.Run(map[bool]string{true: "quic", false: "tcp"}[quicOn], func(t *testing.T) {
			t.Parallel()
			backend := newKey(t)
			gw := startGateway(t, &holders{m: map[string][]identity.PublicKey{"web": {backend.Public()}}}, quicOn, 0)
			c, _ := runClient(t, ClientConfig{
				Key:           backend,
				Names:         []Route{{Name: "web", Target: echoTarget(t, "b1")}},
				Gateways:      []Gateway{{Addr: gw.addr, Key: gw.key.Public()}},
				FallbackAfter: 500 * time.Millisecond,
			})
			waitFor(t, "tunnel up", 10*time.Second, connected(c, ""))
			var wg sync.WaitGroup
			errs := make(chan error, 200)
			for range 200 {
				wg.Add(1)
				go func() {
					defer wg.Done()
					msg := make([]byte, 16<<10)
					rand.Read(msg)
					if _, err := roundTripWithin(gw.srv, "web", string(msg), 60*time.Second); err != nil {
						errs <- err
					}
				}()
			}
			wg.Wait()
			close(errs)
			for err := range errs {
				t.Fatal(err)
			}
		})
	}
}

// TestReconnectAfterCut runs the QUIC tunnel through a UDP relay that
// drops everything for a while: heartbeats notice, the client reconnects
// by itself, and requests succeed again.
func TestReconnectAfterCut(t *testing.T) {
	t.Parallel()
	backend := newKey(t)
	hb := 200 * time.Millisecond
	gw := startGateway(t, &holders{m: map[string][]identity.PublicKey{"web": {backend.Public()}}}, true, hb)
	relay := newUDPRelay(t, gw.addr)
	c, _ := runClient(t, ClientConfig{
		Key:        backend,
		Names:      []Route{{Name: "web", Target: echoTarget(t, "b1")}},
		Gateways:   []Gateway{{Addr: relay.addr(), Key: gw.key.Public()}},
		Heartbeat:  hb,
		MaxBackoff: time.Second,
	})
	waitFor(t, "tunnel up", 10*time.Second, connected(c, TransportQUIC))
	if _, err := roundTrip(t, gw.srv, "web", "before"); err != nil {
		t.Fatal(err)
	}
	relay.cut(true)
	waitFor(t, "the client to notice the cut", 5*time.Second, func() bool { return !c.Status()[0].Connected })
	waitFor(t, "the gateway to drop the tunnel", 5*time.Second, func() bool { _, ok := gw.srv.Mode("web"); return !ok })
	time.Sleep(time.Second)
	relay.cut(false)
	waitFor(t, "reconnect", 10*time.Second, connected(c, ""))
	if _, err := roundTrip(t, gw.srv, "web", "after"); err != nil {
		t.Fatal(err)
	}
	if st := c.Status()[0]; st.Reconnects < 1 {
		t.Fatalf("status %+v: no reconnect counted", st)
	}
}

// udpRelay forwards one client's datagrams to a server; cut drops them.
type udpRelay struct {
	pc      net.PacketConn
	mu      sync.Mutex
	dropped bool
}

func newUDPRelay(t testing.TB, server string) *udpRelay {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := net.ResolveUDPAddr("udp", server)
	r := &udpRelay{pc: pc}
	up := map[string]*net.UDPConn{}
	var umu sync.Mutex
	t.Cleanup(func() {
		pc.Close()
		umu.Lock()
		for _, c := range up {
			c.Close()
		}
		umu.Unlock()
	})
	go func() {
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			if r.isCut() {
				continue
			}
			umu.Lock()
			c := up[from.String()]
			if c == nil {
				if c, err = net.DialUDP("udp", nil, srv); err != nil {
					umu.Unlock()
					continue
				}
				up[from.String()] = c
				go func() {
					b := make([]byte, 65536)
					for {
						n, err := c.Read(b)
						if err != nil {
							return
						}
						if !r.isCut() {
							pc.WriteTo(b[:n], from)
						}
					}
				}()
			}
			umu.Unlock()
			c.Write(buf[:n])
		}
	}()
	return r
}

func (r *udpRelay) addr() string { return r.pc.LocalAddr().String() }
func (r *udpRelay) cut(on bool)  { r.mu.Lock(); r.dropped = on; r.mu.Unlock() }
func (r *udpRelay) isCut() bool  { r.mu.Lock(); defer r.mu.Unlock(); return r.dropped }

func TestPassthroughWritesProxyHeader(t *testing.T) {
	t.Parallel()
	backend := newKey(t)
	gw := startGateway(t, &holders{m: map[string][]identity.PublicKey{"tls": {backend.Public()}}}, true, 0)
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pl := &proxyproto.Listener{Listener: l}
	t.Cleanup(func() { pl.Close() })
	got := make(chan string, 1)
	go func() {
		c, err := pl.Accept()
		if err != nil {
			return
		}
		defer c.Close()
		b, _ := io.ReadAll(io.LimitReader(c, 5))
		got <- c.RemoteAddr().String() + " " + string(b)
	}()
	c, _ := runClient(t, ClientConfig{
		Key:      backend,
		Names:    []Route{{Name: "tls", Mode: ModePassthrough, Target: l.Addr().String(), ProxyProtocol: true}},
		Gateways: []Gateway{{Addr: gw.addr, Key: gw.key.Public()}},
	})
	waitFor(t, "tunnel up", 10*time.Second, connected(c, ""))
	if m, _ := gw.srv.Mode("tls"); m != ModePassthrough {
		t.Fatalf("mode %v", m)
	}
	client := netip.MustParseAddrPort("203.0.113.7:40123")
	st, err := gw.srv.Dial(context.Background(), "tls", StreamMeta{Client: client, Mode: ModePassthrough})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	io.WriteString(st, "hello")
	select {
	case g := <-got:
		if g != "203.0.113.7:40123 hello" {
			t.Fatalf("target saw %q", g)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("target got nothing")
	}
}

func TestProxyHeaderFamilies(t *testing.T) {
	t.Parallel()
	v6 := &net.TCPAddr{IP: net.ParseIP("::1"), Port: 80}
	v4 := &net.TCPAddr{IP: net.ParseIP("127.0.0.1"), Port: 80}
	for _, tc := range []struct {
		client string
		target *net.TCPAddr
		want   proxyproto.AddressFamilyAndProtocol
	}{
		{"203.0.113.7:1", v4, proxyproto.TCPv4},
		{"203.0.113.7:1", v6, proxyproto.TCPv4},
		{"[2001:db8::1]:1", v4, proxyproto.TCPv6},
		{"[::ffff:203.0.113.7]:1", v6, proxyproto.TCPv4},
	} {
		h := proxyHeader(netip.MustParseAddrPort(tc.client), tc.target)
		var b bytes.Buffer
		if _, err := h.WriteTo(&b); err != nil || h.TransportProtocol != tc.want || h.Command != proxyproto.PROXY {
			t.Errorf("%s → %s: %v %v %v", tc.client, tc.target, h.TransportProtocol, h.Command, err)
		}
	}
	if h := proxyHeader(netip.AddrPort{}, v4); h.Command != proxyproto.LOCAL {
		t.Errorf("unknown client: command %v, want LOCAL", h.Command)
	}
}

func TestBackoffGrowsAndIsCapped(t *testing.T) {
	t.Parallel()
	limit := 30 * time.Second
	prev := time.Duration(0)
	for f := 1; f <= 40; f++ {
		d := backoff(f, limit)
		if d > limit || d <= 0 {
			t.Fatalf("backoff(%d) = %s", f, d)
		}
		if f <= 6 && d < prev/2 {
			t.Fatalf("backoff(%d) = %s shrank from %s", f, d, prev)
		}
		prev = d
	}
	if d := backoff(40, limit); d < limit/2 {
		t.Fatalf("backoff(40) = %s, want near the cap", d)
	}
}

func TestNewClientRejectsBadConfig(t *testing.T) {
	t.Parallel()
	k := newKey(t)
	gw := []Gateway{{Addr: "127.0.0.1:1", Key: k.Public()}}
	for name, cfg := range map[string]ClientConfig{
		"no key":      {Names: []Route{{Name: "a", Target: "x:1"}}, Gateways: gw},
		"no gateway":  {Key: k, Names: []Route{{Name: "a", Target: "x:1"}}},
		"no names":    {Key: k, Gateways: gw},
		"dup name":    {Key: k, Names: []Route{{Name: "a", Target: "x:1"}, {Name: "a", Target: "x:1"}}, Gateways: gw},
		"no target":   {Key: k, Names: []Route{{Name: "a"}}, Gateways: gw},
		"long name":   {Key: k, Names: []Route{{Name: strings.Repeat("a", 64), Target: "x:1"}}, Gateways: gw},
		"bad mode":    {Key: k, Names: []Route{{Name: "a", Target: "x:1", Mode: 7}}, Gateways: gw},
		"gateway key": {Key: k, Names: []Route{{Name: "a", Target: "x:1"}}, Gateways: []Gateway{{Addr: "x:1"}}},
	} {
		if _, err := NewClient(cfg); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// A backend whose local target is down answers the stream with an error,
// and Dial takes the other backend.
func TestDialSkipsBackendWithDeadTarget(t *testing.T) {
	t.Parallel()
	b1, b2 := newKey(t), newKey(t)
	gw := startGateway(t, &holders{m: map[string][]identity.PublicKey{"web": {b1.Public(), b2.Public()}}}, true, 0)
	dead, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	deadAddr := dead.Addr().String()
	dead.Close() // nothing listens here any more
	c1, _ := runClient(t, ClientConfig{Key: b1, Names: []Route{{Name: "web", Target: deadAddr}},
		Gateways: []Gateway{{Addr: gw.addr, Key: gw.key.Public()}}})
	c2, _ := runClient(t, ClientConfig{Key: b2, Names: []Route{{Name: "web", Target: echoTarget(t, "b2")}},
		Gateways: []Gateway{{Addr: gw.addr, Key: gw.key.Public()}}})
	waitFor(t, "both tunnels", 10*time.Second, func() bool { return connected(c1, "")() && connected(c2, "")() })
	for i := range 6 {
		if id, err := roundTrip(t, gw.srv, "web", "x"); err != nil || id != "b2" {
			t.Fatalf("request %d: %q, %v", i, id, err)
		}
	}
}

// Several gateways at once: the backend keeps a tunnel to each, and one
// going away leaves the other serving.
func TestSeveralGateways(t *testing.T) {
	t.Parallel()
	backend := newKey(t)
	auth := &holders{m: map[string][]identity.PublicKey{"web": {backend.Public()}}}
	g1 := startGateway(t, auth, true, 0)
	g2 := startGateway(t, auth, false, 0)
	c, _ := runClient(t, ClientConfig{
		Key:           backend,
		Names:         []Route{{Name: "web", Target: echoTarget(t, "b")}},
		Gateways:      []Gateway{{Addr: g1.addr, Key: g1.key.Public()}, {Addr: g2.addr, Key: g2.key.Public()}},
		FallbackAfter: 500 * time.Millisecond,
	})
	waitFor(t, "tunnels to both gateways", 10*time.Second, connected(c, ""))
	st := c.Status()
	if st[0].Transport != TransportQUIC || st[1].Transport != TransportTCP {
		t.Fatalf("transports %s, %s", st[0].Transport, st[1].Transport)
	}
	for _, g := range []*gateway{g1, g2} {
		if _, err := roundTrip(t, g.srv, "web", "x"); err != nil {
			t.Fatal(err)
		}
	}
}
