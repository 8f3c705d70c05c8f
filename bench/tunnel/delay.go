package main

import (
	"context"
	"net"
	"time"
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
