package tunnel

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
)

// goroutineStacks returns the stack of every live goroutine, by id.
func goroutineStacks() map[string]string {
	buf := make([]byte, 1<<20)
	for {
		n := runtime.Stack(buf, true)
		if n < len(buf) {
			buf = buf[:n]
			break
		}
		buf = make([]byte, 2*len(buf))
	}
	out := map[string]string{}
	for _, g := range strings.Split(string(buf), "\n\n") {
		if f := strings.Fields(g); len(f) > 1 && f[0] == "goroutine" {
			out[f[1]] = g
		}
	}
	return out
}

// newGoroutines returns the stacks of goroutines not in before that
// contain any of frames; with no frames, those running anything beyond
// the runtime's own work (GC workers start when they please).
func newGoroutines(before map[string]string, frames ...string) []string {
	var out []string
	for id, g := range goroutineStacks() {
		if _, old := before[id]; old {
			continue
		}
		if len(frames) == 0 && !runsCode(g) {
			continue
		}
		for _, f := range frames {
			if strings.Contains(g, f) {
				out = append(out, g)
				break
			}
		}
		if len(frames) == 0 {
			out = append(out, g)
		}
	}
	return out
}

// runsCode reports whether a goroutine's stack has a frame outside the
// runtime.
func runsCode(stack string) bool {
	for _, line := range strings.Split(stack, "\n")[1:] {
		if line == "" || strings.HasPrefix(line, "\t") || strings.HasPrefix(line, "created by") {
			continue
		}
		if !strings.HasPrefix(line, "runtime.") && !strings.HasPrefix(line, "internal/") {
			return true
		}
	}
	return false
}

// serverFrames name the functions of the gateway's side of tunnels.
var serverFrames = []string{"internal/tunnel.(*Server)", "internal/tunnel.answerPings", "internal/tunnel.either"}

// slowAuth authorizes like holders, except that for key slow it waits
// for its context to end and then takes a while longer (a ledger client
// slow to give up): Close must wait for it.
type slowAuth struct {
	holders
	slow    identity.PublicKey
	entered chan struct{}
	done    atomic.Bool
}

func (a *slowAuth) Authorize(ctx context.Context, name string, key identity.PublicKey) error {
	if key != a.slow {
		return a.holders.Authorize(ctx, name, key)
	}
	close(a.entered)
	<-ctx.Done()
	time.Sleep(500 * time.Millisecond)
	a.done.Store(true)
	return ctx.Err()
}

// TestServerCloseWaits: Close ends every tunnel and returns only once no
// goroutine of the server is left (one is still asking a slow
// Authorizer), while new connections keep arriving; concurrent and
// repeated Closes are fine, and a closed server serves nothing more. Not
// parallel: it counts the process's goroutines.
func TestServerCloseWaits(t *testing.T) {
	before := goroutineStacks()
	backend, key, slow := newKey(t), newKey(t), newKey(t)
	auth := &slowAuth{holders: holders{m: map[string][]identity.PublicKey{"web": {backend.Public()}}},
		slow: slow.Public(), entered: make(chan struct{})}
	srv, err := NewServer(ServerConfig{Key: key, Logger: testLogger(t), Authorizer: auth})
	if err != nil {
		t.Fatal(err)
	}
	// QUIC and TLS on one port; TLS only on another, where a backend
	// falls back to TCP.
	gw := &gateway{srv: srv, key: key}
	var l, l2 net.Listener
	var pc net.PacketConn
	for range 20 {
		if l, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
			t.Fatal(err)
		}
		if pc, err = net.ListenPacket("udp", l.Addr().String()); err == nil {
			break
		}
		l.Close()
	}
	if pc == nil {
		t.Fatal("no port free for both TCP and UDP")
	}
	defer pc.Close()
	if l2, err = net.Listen("tcp", "127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	gw.addr = l.Addr().String()
	serveErrs := make(chan error, 3)
	ctx := context.Background()
	go func() { serveErrs <- srv.ServeQUIC(ctx, pc) }()
	go func() { serveErrs <- srv.ServeTLS(ctx, l) }()
	go func() { serveErrs <- srv.ServeTLS(ctx, l2) }()

	// The backends' target: closed before the final count.
	tl, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var echoes sync.WaitGroup
	echoes.Go(func() {
		for {
			c, err := tl.Accept()
			if err != nil {
				return
			}
			echoes.Go(func() { defer c.Close(); io.WriteString(c, "b\n"); io.Copy(c, c) })
		}
	})
	target := tl.Addr().String()
	cq, stopQ := runClient(t, ClientConfig{Key: backend, Names: []Route{{Name: "web", Target: target}},
		Gateways: []Gateway{{Addr: gw.addr, Key: key.Public()}}})
	ct, stopT := runClient(t, ClientConfig{Key: backend, Names: []Route{{Name: "web", Target: target}},
		Gateways: []Gateway{{Addr: l2.Addr().String(), Key: key.Public()}}, FallbackAfter: 300 * time.Millisecond})
	waitFor(t, "tunnels over QUIC and TCP", 10*time.Second, func() bool {
		return connected(cq, TransportQUIC)() && connected(ct, TransportTCP)()
	})
	// A third backend's hello waits on the slow Authorizer.
	_, stopS := runClient(t, ClientConfig{Key: slow, Names: []Route{{Name: "web", Target: target}},
		Gateways: []Gateway{{Addr: gw.addr, Key: key.Public()}}})
	select {
	case <-auth.entered:
	case <-time.After(10 * time.Second):
		t.Fatal("the slow backend's hello never reached the Authorizer")
	}
	// A stream in flight through each tunnel (Dial takes them in turn).
	var streams []net.Conn
	for range 2 {
		st, err := srv.Dial(ctx, "web", StreamMeta{})
		if err != nil {
			t.Fatal(err)
		}
		defer st.Close()
		st.SetDeadline(time.Now().Add(20 * time.Second))
		if id, err := bufio.NewReader(st).ReadString('\n'); err != nil || id != "b\n" {
			t.Fatalf("stream: %q %v", id, err)
		}
		streams = append(streams, st)
	}

	// New connections keep arriving, over both transports, while the
	// server closes.
	hctx, stopHammer := context.WithCancel(ctx)
	var hammer sync.WaitGroup
	var attempts atomic.Int64
	tc, err := clientTLS(newKey(t), key.Public())
	if err != nil {
		t.Fatal(err)
	}
	for i := range 4 {
		hammer.Go(func() {
			for hctx.Err() == nil {
				attempts.Add(1)
				dctx, cancel := context.WithTimeout(hctx, 300*time.Millisecond)
				if i%2 == 0 {
					if qs, err := dialQUIC(dctx, gw.addr, tc, quicConfig(time.Second)); err == nil {
						qs.Close()
					}
				} else if c, err := (&tls.Dialer{Config: tc}).DialContext(dctx, "tcp", gw.addr); err == nil {
					c.Close()
				}
				cancel()
			}
		})
	}
	defer func() { stopHammer(); hammer.Wait() }()
	waitFor(t, "connections arriving", 10*time.Second, func() bool { return attempts.Load() >= 8 })

	var closers sync.WaitGroup
	for range 3 {
		closers.Go(func() { srv.Close() })
	}
	closers.Wait()
	if !auth.done.Load() {
		t.Error("Close returned while a tunnel was still asking the Authorizer")
	}
	if left := newGoroutines(before, serverFrames...); len(left) > 0 {
		t.Fatalf("%d goroutines of the server outlived Close:\n\n%s", len(left), strings.Join(left, "\n\n"))
	}
	for range 3 {
		if err := <-serveErrs; !errors.Is(err, ErrServerClosed) {
			t.Errorf("Serve returned %v after Close, want ErrServerClosed", err)
		}
	}
	srv.Close() // again: a no-op
	if _, ok := srv.Mode("web"); ok {
		t.Error("a closed server still lists a backend")
	}
	if _, err := srv.Dial(ctx, "web", StreamMeta{}); !errors.Is(err, ErrNoBackend) {
		t.Errorf("Dial after Close = %v, want ErrNoBackend", err)
	}
	for i, st := range streams {
		if _, err := st.Read(make([]byte, 1)); err == nil || errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("stream %d after Close: read %v, want it ended", i, err)
		}
	}
	l3, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.ServeTLS(ctx, l3); !errors.Is(err, ErrServerClosed) {
		t.Errorf("ServeTLS after Close = %v, want ErrServerClosed", err)
	}
	if _, err := l3.Accept(); err == nil {
		t.Error("ServeTLS after Close left its listener open")
	}

	// The backends' Run returns once their goroutines ended, so nothing
	// of the package is left, and the libraries' goroutines wind down.
	stopHammer()
	hammer.Wait()
	stopQ()
	stopT()
	stopS()
	tl.Close()
	echoes.Wait()
	if left := newGoroutines(before, "internal/tunnel."); len(left) > 0 {
		t.Fatalf("%d goroutines of the package outlived the server and the clients:\n\n%s", len(left), strings.Join(left, "\n\n"))
	}
	for _, st := range streams {
		st.Close()
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		left := newGoroutines(before)
		if len(left) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines still running 10 s after everything closed:\n\n%s", len(left), strings.Join(left, "\n\n"))
		}
		time.Sleep(50 * time.Millisecond)
	}
}
