package main

import (
	"context"
	"net"
	"sync"
	"time"

	"golang.org/x/net/ipv4"
)

// startDelay listens on a new loopback port and forwards to server,
// holding traffic for oneWay in each direction: UDP datagrams for "quic",
// TCP byte chunks for "tcp". Queues are unbounded (no loss), so the delay
// is the only impairment.
func startDelay(ctx context.Context, tr, server string, oneWay time.Duration) (string, error) {
	if tr == "quic" {
		return udpDelay(ctx, server, oneWay)
	}
	return tcpDelay(ctx, server, oneWay)
}

type packet struct {
	due time.Time
	b   []byte
}

// delayLine delivers what it is given oneWay later (±0.5 ms), in order.
func delayLine(ctx context.Context, oneWay time.Duration, send func([]byte)) chan<- packet {
	ch := make(chan packet, 1<<16)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case p := <-ch:
				// Sleep only for waits worth a timer: waking per
				// packet would cap the line near 20k packets/s.
				if d := time.Until(p.due); d > 500*time.Microsecond {
					time.Sleep(d)
				}
				send(p.b)
			}
		}
	}()
	return ch
}

// udpDelay moves datagrams in batches (recvmmsg/sendmmsg) so that the
// proxy itself is not the bottleneck; a batch is delayed as a unit.
func udpDelay(ctx context.Context, server string, oneWay time.Duration) (string, error) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	upc, err := net.Dial("udp", server)
	if err != nil {
		return "", err
	}
	for _, c := range []*net.UDPConn{pc.(*net.UDPConn), upc.(*net.UDPConn)} {
		c.SetReadBuffer(16 << 20)
		c.SetWriteBuffer(16 << 20)
	}
	go func() { <-ctx.Done(); pc.Close(); upc.Close() }()
	down, up := ipv4.NewPacketConn(pc), ipv4.NewPacketConn(upc.(*net.UDPConn))
	var mu sync.Mutex
	var client net.Addr
	toServer := batchLine(ctx, oneWay, func(ms []ipv4.Message) { writeAll(up, ms, nil) })
	toClient := batchLine(ctx, oneWay, func(ms []ipv4.Message) {
		mu.Lock()
		a := client
		mu.Unlock()
		if a != nil {
			writeAll(down, ms, a)
		}
	})
	go readBatches(down, toServer, func(a net.Addr) { mu.Lock(); client = a; mu.Unlock() })
	go readBatches(up, toClient, func(net.Addr) {})
	return pc.LocalAddr().String(), nil
}

type batch struct {
	due time.Time
	ms  []ipv4.Message
}

func readBatches(c *ipv4.PacketConn, line chan<- batch, from func(net.Addr)) {
	for {
		ms := make([]ipv4.Message, 64)
		for i := range ms {
			ms[i].Buffers = [][]byte{make([]byte, 2048)}
		}
		n, err := c.ReadBatch(ms, 0)
		if err != nil {
			return
		}
		for i := range ms[:n] {
			ms[i].Buffers[0] = ms[i].Buffers[0][:ms[i].N]
		}
		from(ms[n-1].Addr)
		line <- batch{time.Now().Add(0), ms[:n]}
	}
}

func writeAll(c *ipv4.PacketConn, ms []ipv4.Message, to net.Addr) {
	for i := range ms {
		ms[i].Addr = to
	}
	for len(ms) > 0 {
		n, err := c.WriteBatch(ms, 0)
		if err != nil {
			return
		}
		ms = ms[n:]
	}
}

// batchLine is delayLine for batches of datagrams.
func batchLine(ctx context.Context, oneWay time.Duration, send func([]ipv4.Message)) chan<- batch {
	ch := make(chan batch, 1<<14)
	go func() {
		for {
			select {
			case <-ctx.Done():
				return
			case b := <-ch:
				if d := time.Until(b.due.Add(oneWay)); d > 500*time.Microsecond {
					time.Sleep(d)
				}
				send(b.ms)
			}
		}
	}()
	return ch
}

func tcpDelay(ctx context.Context, server string, oneWay time.Duration) (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go func() { <-ctx.Done(); l.Close() }()
	go func() {
		for {
			a, err := l.Accept()
			if err != nil {
				return
			}
			b, err := net.Dial("tcp", server)
			if err != nil {
				a.Close()
				continue
			}
			go func() { <-ctx.Done(); a.Close(); b.Close() }()
			go pump(ctx, a, b, oneWay)
			go pump(ctx, b, a, oneWay)
		}
	}()
	return l.Addr().String(), nil
}

func pump(ctx context.Context, src, dst net.Conn, oneWay time.Duration) {
	line := delayLine(ctx, oneWay, func(b []byte) { dst.Write(b) })
	for {
		b := make([]byte, 64<<10)
		n, err := src.Read(b)
		if n > 0 {
			line <- packet{time.Now().Add(oneWay), b[:n]}
		}
		if err != nil {
			return
		}
	}
}
