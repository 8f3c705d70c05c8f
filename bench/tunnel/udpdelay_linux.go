package main

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/net/ipv4"
	"golang.org/x/sys/unix"
)

// The UDP delay line must look like a 20 ms path and nothing else: no
// loss, FIFO, each datagram handed on oneWay after it arrived, at the
// pace it arrived, and at a CPU cost small next to the tunnel's, since
// it shares the tunnel's two cores. The first version missed the last
// two:
//
//   - It split every GSO train a QUIC sender writes (up to 14 datagrams
//     in one send) into single datagrams and sent each through loopback
//     again, 64 to a sendmmsg that took ~220 µs: as much CPU as a QUIC
//     endpoint. With 2 µs of added delay QUIC got 0.6–1.4 Gbit/s
//     through it against 3.7 without it. Here the sockets take trains
//     whole (UDP_GRO) and give them back whole (UDP_SEGMENT, the same
//     segment size), so the receiver still gets the same datagrams: 2.9–
//     3.2 Gbit/s through the line at 2 µs.
//   - It stamped a whole recvmmsg batch with the time the reader got to
//     it (up to 4.5 ms late on busy cores), released a batch up to 0.5
//     ms early, or after a late wake-up together with the next ones, so
//     one-way delay was 9.5–16.4 ms (p99 13.9). Here the kernel stamps
//     each arrival (SO_TIMESTAMPNS), nothing leaves before its stamp +
//     oneWay, and one sendmmsg carries only what is due: 10.0–12.7 ms
//     (p99 11.5; the rest is Go's timer resolution on idle cores).
//
// It never lost a datagram, but nothing showed that: its socket buffers
// were clamped to rmem_max and a failed sendmmsg dropped the rest of its
// batch unreported. Buffers are now forced (SO_RCVBUFFORCE, we run as
// root), kernel drops are reported (SO_RXQ_OVFL), and sends are retried
// or reported.
const (
	udpProxyBuffer = 32 << 20
	udpBatch       = 16
)

// udpDelay listens on a new loopback port and forwards datagrams to
// server and back, each held for oneWay. The first client address seen
// gets the replies.
func udpDelay(ctx context.Context, server string, oneWay time.Duration) (string, error) {
	pc, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		return "", err
	}
	ra, err := net.ResolveUDPAddr("udp", server)
	if err != nil {
		pc.Close()
		return "", err
	}
	upc, err := net.DialUDP("udp", nil, ra)
	if err != nil {
		pc.Close()
		return "", err
	}
	for _, c := range []*net.UDPConn{pc, upc} {
		if err := tuneProxySocket(c); err != nil {
			pc.Close()
			upc.Close()
			return "", fmt.Errorf("delay proxy socket: %w", err)
		}
	}
	go func() { <-ctx.Done(); pc.Close(); upc.Close() }()
	down, up := ipv4.NewPacketConn(pc), ipv4.NewPacketConn(upc)
	var client atomic.Pointer[net.Addr]
	toServer := make(chan []datagram, 1<<14)
	toClient := make(chan []datagram, 1<<14)
	go readLine(ctx, down, oneWay, toServer, "to server", func(a net.Addr) {
		if client.Load() == nil {
			client.Store(&a)
		}
	})
	go readLine(ctx, up, oneWay, toClient, "to client", func(net.Addr) {})
	go writeLine(ctx, up, toServer, "to server", func() net.Addr { return nil })
	go writeLine(ctx, down, toClient, "to client", func() net.Addr {
		if a := client.Load(); a != nil {
			return *a
		}
		return nil
	})
	return pc.LocalAddr().String(), nil
}

// tuneProxySocket sizes the buffers past rmem_max and asks the kernel
// for arrival stamps and its drop counter.
func tuneProxySocket(c *net.UDPConn) error {
	rc, err := c.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	err = rc.Control(func(fd uintptr) {
		for _, o := range [][2]int{
			{unix.SO_RCVBUFFORCE, udpProxyBuffer},
			{unix.SO_SNDBUFFORCE, udpProxyBuffer},
			{unix.SO_TIMESTAMPNS, 1},
			{unix.SO_RXQ_OVFL, 1},
		} {
			if err := unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, o[0], o[1]); err != nil {
				serr = errors.Join(serr, fmt.Errorf("setsockopt %d: %w", o[0], err))
			}
		}
		if err := unix.SetsockoptInt(int(fd), unix.SOL_UDP, unix.UDP_GRO, 1); err != nil {
			serr = errors.Join(serr, fmt.Errorf("setsockopt UDP_GRO: %w", err))
		}
	})
	return errors.Join(err, serr)
}

type datagram struct {
	due time.Time
	b   *[maxTrain]byte
	n   int
	seg int // segment size when b holds a GSO train, else 0
}

// maxTrain is the largest GSO train the kernel hands over in one read.
const maxTrain = 1 << 16

var bufPool = sync.Pool{New: func() any { return new([maxTrain]byte) }}

// readLine reads datagrams in batches and queues each with its own due
// time: kernel arrival + oneWay.
func readLine(ctx context.Context, c *ipv4.PacketConn, oneWay time.Duration, line chan<- []datagram, name string, from func(net.Addr)) {
	ms := make([]ipv4.Message, udpBatch)
	bufs := make([]*[maxTrain]byte, udpBatch)
	for i := range ms {
		ms[i].OOB = make([]byte, 128)
		ms[i].Buffers = make([][]byte, 1)
	}
	var dropped uint32 // the kernel's overflow counter for this socket
	for {
		for i := range ms {
			if bufs[i] == nil {
				bufs[i] = bufPool.Get().(*[maxTrain]byte)
			}
			ms[i].Buffers[0] = bufs[i][:]
		}
		n, err := c.ReadBatch(ms, 0)
		if err != nil {
			if ctx.Err() == nil {
				log.Printf("delay proxy %s: read: %v", name, err)
			}
			return
		}
		now := time.Now()
		ds := make([]datagram, n)
		for i := range ms[:n] {
			at, ovfl, seg := parseCmsgs(ms[i].OOB[:ms[i].NN])
			if at.IsZero() || at.After(now) {
				at = now
			}
			if ovfl != dropped {
				log.Printf("delay proxy %s: the kernel dropped %d datagrams (socket buffer full)", name, ovfl-dropped)
				dropped = ovfl
			}
			ds[i] = datagram{at.Add(oneWay), bufs[i], ms[i].N, seg}
			bufs[i] = nil
		}
		from(ms[n-1].Addr)
		line <- ds
	}
}

// parseCmsgs returns the SO_TIMESTAMPNS arrival time, the SO_RXQ_OVFL
// drop count and the UDP_GRO segment size found in oob.
func parseCmsgs(oob []byte) (at time.Time, ovfl uint32, seg int) {
	cms, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return time.Time{}, 0, 0
	}
	for _, m := range cms {
		switch {
		case m.Header.Level == unix.SOL_UDP && m.Header.Type == unix.UDP_GRO && len(m.Data) >= 4:
			seg = int(*(*int32)(unsafe.Pointer(&m.Data[0])))
		case m.Header.Level != unix.SOL_SOCKET:
		case m.Header.Type == unix.SO_TIMESTAMPNS && len(m.Data) >= int(unsafe.Sizeof(unix.Timespec{})):
			ts := (*unix.Timespec)(unsafe.Pointer(&m.Data[0]))
			at = time.Unix(ts.Unix())
		case m.Header.Type == unix.SO_RXQ_OVFL && len(m.Data) >= 4:
			ovfl = *(*uint32)(unsafe.Pointer(&m.Data[0]))
		}
	}
	return at, ovfl, seg
}

// writeLine sends datagrams in order, none before it is due; one
// sendmmsg carries only datagrams that are all due.
func writeLine(ctx context.Context, c *ipv4.PacketConn, line <-chan []datagram, name string, to func() net.Addr) {
	var q []datagram
	ms := make([]ipv4.Message, 0, udpBatch)
	sent := make([]*[maxTrain]byte, 0, udpBatch)
	oobs := make([][]byte, udpBatch)
	for i := range oobs {
		oobs[i] = make([]byte, unix.CmsgSpace(2))
	}
	for {
		if len(q) == 0 {
			select {
			case <-ctx.Done():
				return
			case q = <-line:
			}
		}
		if d := time.Until(q[0].due); d > 0 {
			time.Sleep(d)
		}
		now := time.Now()
		ms, sent = ms[:0], sent[:0]
		for len(ms) < udpBatch {
			if len(q) == 0 {
				select {
				case q = <-line:
				default:
				}
				if len(q) == 0 {
					break
				}
			}
			if q[0].due.After(now) {
				break
			}
			m := ipv4.Message{Buffers: [][]byte{q[0].b[:q[0].n]}, Addr: to()}
			if q[0].seg > 0 && q[0].n > q[0].seg {
				m.OOB = segmentCmsg(oobs[len(ms)], q[0].seg)
			}
			ms = append(ms, m)
			sent = append(sent, q[0].b)
			q = q[1:]
		}
		if err := sendAll(c, ms); err != nil {
			if ctx.Err() != nil {
				return
			}
			log.Printf("delay proxy %s: lost %d datagrams: %v", name, len(ms), err)
		}
		for _, b := range sent {
			bufPool.Put(b)
		}
	}
}

// segmentCmsg fills b with a UDP_SEGMENT control message: the kernel
// splits the train back into the datagrams it was received as.
func segmentCmsg(b []byte, seg int) []byte {
	h := (*unix.Cmsghdr)(unsafe.Pointer(&b[0]))
	h.Level = unix.SOL_UDP
	h.Type = unix.UDP_SEGMENT
	h.SetLen(unix.CmsgLen(2))
	*(*uint16)(unsafe.Pointer(&b[unix.CmsgLen(0)])) = uint16(seg)
	return b[:unix.CmsgSpace(2)]
}

// sendAll sends every message, retrying transient errors: an ICMP
// error queued on the socket (ECONNREFUSED before the server listens)
// or a momentary ENOBUFS must not cost datagrams.
func sendAll(c *ipv4.PacketConn, ms []ipv4.Message) error {
	for tries := 0; len(ms) > 0; {
		n, err := c.WriteBatch(ms, 0)
		ms = ms[max(n, 0):]
		if err == nil {
			continue
		}
		if tries++; tries > 100 || !(errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOBUFS)) {
			return err
		}
		time.Sleep(100 * time.Microsecond)
	}
	return nil
}
