package main

import (
	"bufio"
	"bytes"
	"context"
	"crypto/rand"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/tunnel"
)

type exposeOut struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *exposeOut) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *exposeOut) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type allowKey struct{ key identity.PublicKey }

func (a allowKey) Authorize(_ context.Context, name string, k identity.PublicKey) error {
	if name == "web" && k.Equal(a.key) {
		return nil
	}
	return fmt.Errorf("%s is not authorized for %s", k, name)
}

// TestExposeServesThroughGateway runs `zgrid expose` against a real tunnel
// server on loopback and reaches the local service through it.
func TestExposeServesThroughGateway(t *testing.T) {
	t.Setenv("ZGRID_PASSPHRASE", "correct horse battery staple")
	keyPath := filepath.Join(t.TempDir(), "me.key")
	out, _, err := run(t, "key", "new", "--out", keyPath)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := identity.ParsePublicKey(strings.TrimSpace(out))
	if err != nil {
		t.Fatal(err)
	}

	gwKey, _ := identity.GenerateKey(rand.Reader)
	srv, err := tunnel.NewServer(tunnel.ServerConfig{Key: gwKey, Authorizer: allowKey{pub}})
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	pc, err := net.ListenPacket("udp", l.Addr().String())
	if err != nil {
		t.Skipf("UDP port %s taken: %v", l.Addr(), err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	defer cancel()
	go srv.ServeTLS(ctx, l)
	go srv.ServeQUIC(ctx, pc)

	svc, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer svc.Close()
	go func() {
		for {
			c, err := svc.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.WriteString(c, "hello from the backend\n") }()
		}
	}()

	var stdout, stderr exposeOut
	root := newRoot(&stdout, &stderr)
	root.SetArgs([]string{"--key", keyPath, "expose", "web", "--to", svc.Addr().String(),
		"--gateway", l.Addr().String(), "--gateway-key", gwKey.Public().String()})
	done := make(chan error, 1)
	go func() { done <- root.ExecuteContext(ctx) }()

	end := time.Now().Add(10 * time.Second)
	for !strings.Contains(stdout.String(), "connected via quic to "+l.Addr().String()) {
		if time.Now().After(end) {
			t.Fatalf("no status line; stdout %q stderr %q", stdout.String(), stderr.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	c, err := srv.Dial(ctx, "web", tunnel.StreamMeta{})
	if err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	c.Close()
	if err != nil || line != "hello from the backend\n" {
		t.Fatalf("through the tunnel: %q, %v", line, err)
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("expose returned %v after interrupt", err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("expose did not stop")
	}
}

func TestExposeFlagErrors(t *testing.T) {
	k, _ := identity.GenerateKey(rand.Reader)
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"expose", "web", "--to", "8080", "--gateway", "g:1", "--gateway-key", k.Public().String()}, "--to"},
		{[]string{"expose", "web", "--to", "127.0.0.1:8080"}, "--gateway"},
		{[]string{"expose", "web", "--to", "127.0.0.1:8080", "--gateway", "g:1", "--gateway-key", "zgpub1nope"}, "--gateway-key"},
		{[]string{"expose", "web", "--to", "127.0.0.1:8080", "--gateway", "g:1", "--gateway-key", k.Public().String(), "--mode", "udp"}, "--mode"},
	} {
		_, _, err := run(t, tc.args...)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: %v, want an error about %s", tc.args, err, tc.want)
		}
	}
}
