package grid

import (
	"io"
	"net"
	"sync"
)

// forwarder relays TCP connections from a listener to one address: it
// makes the in-process ledger and hub, which listen on loopback, reachable
// at the gateway address from the nodes' namespaces.
type forwarder struct {
	l    net.Listener
	to   string
	wg   sync.WaitGroup
	mu   sync.Mutex
	cons map[net.Conn]struct{}
}

func forward(listen, to string) (*forwarder, error) {
	l, err := net.Listen("tcp", listen)
	if err != nil {
		return nil, err
	}
	f := &forwarder{l: l, to: to, cons: map[net.Conn]struct{}{}}
	f.wg.Add(1)
	go f.accept()
	return f, nil
}

func (f *forwarder) accept() {
	defer f.wg.Done()
	for {
		c, err := f.l.Accept()
		if err != nil {
			return
		}
		f.wg.Add(1)
		go f.relay(c)
	}
}

func (f *forwarder) relay(c net.Conn) {
	defer f.wg.Done()
	up, err := net.Dial("tcp", f.to)
	if err != nil {
		c.Close()
		return
	}
	if !f.track(c, up) {
		return
	}
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(up, c)
	go pipe(c, up)
	<-done
	<-done
	f.untrack(c, up)
}

func (f *forwarder) track(cs ...net.Conn) bool {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.cons == nil {
		for _, c := range cs {
			c.Close()
		}
		return false
	}
	for _, c := range cs {
		f.cons[c] = struct{}{}
	}
	return true
}

func (f *forwarder) untrack(cs ...net.Conn) {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, c := range cs {
		c.Close()
		delete(f.cons, c)
	}
}

// close stops listening, closes every relayed connection and waits.
func (f *forwarder) close() {
	f.l.Close()
	f.mu.Lock()
	for c := range f.cons {
		c.Close()
	}
	f.cons = nil
	f.mu.Unlock()
	f.wg.Wait()
}
