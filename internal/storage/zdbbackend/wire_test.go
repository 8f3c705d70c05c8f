package zdbbackend

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/storage"
)

// recorder is a TCP proxy that keeps a copy of every byte the client sends.
type recorder struct {
	mu   sync.Mutex
	sent bytes.Buffer
	ln   net.Listener
}

func (r *recorder) Write(p []byte) (int, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sent.Write(p)
}

func (r *recorder) bytes() []byte {
	r.mu.Lock()
	defer r.mu.Unlock()
	return bytes.Clone(r.sent.Bytes())
}

// startRecorder proxies a new local address to target until the test ends.
func startRecorder(t *testing.T, target string) (*recorder, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	r := &recorder{ln: ln}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var conns []net.Conn
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			mu.Lock()
			conns = append(conns, c, up)
			mu.Unlock()
			wg.Go(func() { io.Copy(io.MultiWriter(up, r), c); up.Close() })
			wg.Go(func() { io.Copy(c, up); c.Close() })
		}
	})
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	return r, ln.Addr().String()
}

// TestPasswordNeverOnTheWire records what the backend sends: the
// challenge–response, never the password; and FSYNC after each SET.
func TestPasswordNeverOnTheWire(t *testing.T) {
	t.Parallel()
	s := startZDB(t)
	pw := randomHex(t)
	rec, addr := startRecorder(t, s.addr)
	b := newBackend(t, addr, s.namespace(pw, ""), pw, 0)
	ctx := context.Background()
	var wg sync.WaitGroup
	for range 4 { // several pooled connections, each authenticated
		wg.Go(func() {
			if err := b.Put(ctx, "obj", []byte("data")); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if got, err := b.Get(ctx, "obj", 0, -1); err != nil || string(got) != "data" {
		t.Fatalf("Get through the proxy = %q, %v", got, err)
	}
	sent := rec.bytes()
	if !bytes.Contains(sent, []byte("CHALLENGE")) || !bytes.Contains(sent, []byte("SECURE")) {
		t.Fatalf("the backend did not use the challenge–response; it sent %q", sent)
	}
	if bytes.Contains(sent, []byte(pw)) {
		t.Fatal("the password crossed the wire")
	}
	// Put is durable when it returns: every SET is followed by an FSYNC.
	if sets, syncs := bytes.Count(sent, []byte("\r\nSET\r\n")), bytes.Count(sent, []byte("\r\nFSYNC\r\n")); sets != 4 || syncs < sets {
		t.Fatalf("sent %d SET and %d FSYNC, want 4 SET each followed by FSYNC", sets, syncs)
	}
}

// TestSilentServerTimesOut: a server that accepts and never answers makes
// calls fail with ErrUnavailable after Config.Timeout, not hang.
func TestSilentServerTimesOut(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			held = append(held, c) // read nothing, answer nothing
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		<-done
		for _, c := range held {
			c.Close()
		}
	})

	b := newBackend(t, ln.Addr().String(), "ns", "pw", 200*time.Millisecond)
	start := time.Now()
	_, err = b.Stat(context.Background(), "x")
	if !errors.Is(err, storage.ErrUnavailable) || !storage.IsRetryable(err) {
		t.Fatalf("Stat against a silent server: %v, want a retryable ErrUnavailable", err)
	}
	// Generous bound (retries, a loaded machine); without the timeout the
	// call would never return.
	if d := time.Since(start); d > 10*time.Second {
		t.Fatalf("Stat took %v with a 200ms timeout", d)
	}
}
