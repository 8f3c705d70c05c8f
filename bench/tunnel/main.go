// Command tunnel measures the bulk throughput of one stream through a
// gateway tunnel (internal/tunnel), over QUIC and over the TLS+TCP
// fallback, at 0 ms and at added round-trip times:
//
//	go run ./bench/tunnel [-time 5s] [-rtt 0,20ms] [-transport quic,tcp]
//
// Everything runs in this process on loopback: a tunnel server (the
// gateway's end), a tunnel client (the backend's end) and a local target.
// Upload ("up") is gateway → backend: the gateway writes for -time and the
// target counts; download ("down") is backend → gateway. Added RTT comes
// from a userspace delay proxy between client and server (this kernel has
// no netem) that holds every UDP datagram, or every TCP read, for RTT/2 in
// each direction. The TCP proxy terminates TCP, so the kernel's windows on
// each side are local and only the tunnel's own (yamux) flow control sees
// the delay, as in the reverse-tunnel experiment of
// /work/shared/notes/overlay-and-gateways.md §3b. Both
// ends and the proxy share this machine's cores: numbers are CPU-bound.
package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"strings"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/tunnel"
)

type allow struct{}

func (allow) Authorize(context.Context, string, identity.PublicKey) error { return nil }

func main() {
	dur := flag.Duration("time", 5*time.Second, "how long each transfer runs")
	rtts := flag.String("rtt", "0,20ms", "comma-separated added round-trip times")
	trs := flag.String("transport", "quic,tcp", "comma-separated transports: quic, tcp")
	flag.Parse()
	fmt.Printf("%-10s %-8s %12s %12s\n", "transport", "rtt", "up Gbit/s", "down Gbit/s")
	for _, tr := range strings.Split(*trs, ",") {
		for _, r := range strings.Split(*rtts, ",") {
			rtt := time.Duration(0)
			if r != "0" {
				var err error
				if rtt, err = time.ParseDuration(r); err != nil {
					log.Fatalf("-rtt %q: %v", r, err)
				}
			}
			up, down, err := run(tr, rtt, *dur)
			if err != nil {
				log.Fatalf("%s at %s: %v", tr, rtt, err)
			}
			fmt.Printf("%-10s %-8s %12.2f %12.2f\n", tr, rtt, up, down)
		}
	}
}

func run(tr string, rtt, dur time.Duration) (up, down float64, err error) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	gwKey, _ := identity.GenerateKey(rand.Reader)
	beKey, _ := identity.GenerateKey(rand.Reader)
	srv, err := tunnel.NewServer(tunnel.ServerConfig{Key: gwKey, Authorizer: allow{}})
	if err != nil {
		return 0, 0, err
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, 0, err
	}
	defer l.Close()
	pc, err := net.ListenPacket("udp", l.Addr().String())
	if err != nil {
		return 0, 0, err
	}
	defer pc.Close()
	go srv.ServeTLS(ctx, l)
	if tr == "quic" {
		go srv.ServeQUIC(ctx, pc)
	}
	addr := l.Addr().String()
	if rtt > 0 {
		if addr, err = startDelay(ctx, tr, addr, rtt/2); err != nil {
			return 0, 0, err
		}
	}
	target, err := startTarget(ctx, dur)
	if err != nil {
		return 0, 0, err
	}
	c, err := tunnel.NewClient(tunnel.ClientConfig{
		Key:           beKey,
		Names:         []tunnel.Route{{Name: "bench", Target: target}},
		Gateways:      []tunnel.Gateway{{Addr: addr, Key: gwKey.Public()}},
		FallbackAfter: 500 * time.Millisecond,
	})
	if err != nil {
		return 0, 0, err
	}
	go c.Run(ctx)
	for end := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		if s := c.Status()[0]; s.Connected {
			want := map[string]tunnel.Transport{"quic": tunnel.TransportQUIC, "tcp": tunnel.TransportTCP}[tr]
			if s.Transport != want {
				return 0, 0, fmt.Errorf("tunnel came up over %s, want %s", s.Transport, want)
			}
			break
		}
		if time.Now().After(end) {
			return 0, 0, fmt.Errorf("tunnel did not come up: %s", c.Status()[0].LastError)
		}
	}
	if up, err = measureUp(ctx, srv, dur); err != nil {
		return 0, 0, fmt.Errorf("up: %w", err)
	}
	if down, err = measureDown(ctx, srv); err != nil {
		return 0, 0, fmt.Errorf("down: %w", err)
	}
	return up, down, nil
}

// startTarget serves the backend's side: a connection starting with 'u'
// is drained and answered with its byte count; one starting with 'd'
// receives data for dur.
func startTarget(ctx context.Context, dur time.Duration) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go func() { <-ctx.Done(); l.Close() }()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				var op [1]byte
				if _, err := io.ReadFull(c, op[:]); err != nil {
					return
				}
				if op[0] == 'u' {
					n, _ := io.Copy(io.Discard, c)
					binary.Write(c, binary.BigEndian, uint64(n))
					return
				}
				buf := make([]byte, 256<<10)
				for end := time.Now().Add(dur); time.Now().Before(end); {
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			}()
		}
	}()
	return l.Addr().String(), nil
}

func measureUp(ctx context.Context, srv *tunnel.Server, dur time.Duration) (float64, error) {
	c, err := srv.Dial(ctx, "bench", tunnel.StreamMeta{})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	buf := make([]byte, 256<<10)
	buf[0] = 'u'
	start := time.Now()
	for time.Since(start) < dur {
		if _, err := c.Write(buf); err != nil {
			return 0, err
		}
		buf[0] = 0
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		cw.CloseWrite()
	}
	var n uint64
	if err := binary.Read(c, binary.BigEndian, &n); err != nil {
		return 0, err
	}
	return float64(n+1) * 8 / time.Since(start).Seconds() / 1e9, nil
}

func measureDown(ctx context.Context, srv *tunnel.Server) (float64, error) {
	c, err := srv.Dial(ctx, "bench", tunnel.StreamMeta{})
	if err != nil {
		return 0, err
	}
	defer c.Close()
	if _, err := c.Write([]byte{'d'}); err != nil {
		return 0, err
	}
	var first time.Time
	var n int64
	buf := make([]byte, 256<<10)
	for {
		k, err := c.Read(buf)
		if k > 0 && first.IsZero() {
			first = time.Now()
		}
		n += int64(k)
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, err
		}
	}
	return float64(n) * 8 / time.Since(first).Seconds() / 1e9, nil
}

func init() { log.SetOutput(os.Stderr); log.SetFlags(0) }
