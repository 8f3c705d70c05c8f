package chain

import (
	"context"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"strconv"
	"sync"
	"testing"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
)

// testLogger sends Warn and above to the test's output. CometBFT goroutines
// may still log while a node shuts down, so writes after the test ends are
// dropped rather than panicking the test binary.
func testLogger(t *testing.T) *slog.Logger {
	t.Helper()
	w := &guardedWriter{w: t.Output()}
	t.Cleanup(w.close) // registered first, so it runs last
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

type guardedWriter struct {
	mu     sync.Mutex
	w      io.Writer
	closed bool
}

func (g *guardedWriter) Write(p []byte) (int, error) {
	g.mu.Lock()
	defer g.mu.Unlock()
	if g.closed {
		return len(p), nil
	}
	return g.w.Write(p)
}

func (g *guardedWriter) close() {
	g.mu.Lock()
	g.closed = true
	g.mu.Unlock()
}

// startNode starts a validator and stops it when the test ends.
func startTestNode(t *testing.T, cfg Config, app *kvApp) *Node {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	n, err := Start(ctx, cfg, app)
	if err != nil {
		t.Fatalf("Start(%s): %v", cfg.Home, err)
	}
	t.Cleanup(func() {
		if err := n.Stop(); err != nil {
			t.Errorf("Stop(%s): %v", cfg.Home, err)
		}
	})
	return n
}

func rpcClient(t *testing.T, n *Node) *rpchttp.HTTP {
	t.Helper()
	c, err := rpchttp.New("http://" + n.RPCAddr())
	if err != nil {
		t.Fatalf("rpc client for %s: %v", n.RPCAddr(), err)
	}
	return c
}

// waitFor polls cond until it returns true or the timeout passes.
func waitFor(t *testing.T, timeout time.Duration, what string, cond func(context.Context) (bool, error)) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), timeout)
	defer cancel()
	var lastErr error
	for {
		ok, err := cond(ctx)
		if ok {
			return
		}
		if err != nil {
			lastErr = err
		}
		select {
		case <-ctx.Done():
			t.Fatalf("timed out after %v waiting for %s (last error: %v)", timeout, what, lastErr)
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// latestHeight asks a node for its latest committed height.
func latestHeight(ctx context.Context, c *rpchttp.HTTP) (int64, error) {
	st, err := c.Status(ctx)
	if err != nil {
		return 0, err
	}
	return st.SyncInfo.LatestBlockHeight, nil
}

// freeBasePort finds a port p such that p..p+2n-1 can all be bound on
// 127.0.0.1 right now. It searches below Linux's default ephemeral range
// (32768+), so port-0 listeners and outgoing connections of other tests in
// this binary cannot take the ports before the nodes bind them.
func freeBasePort(t *testing.T, n int) int {
	t.Helper()
	for range 100 {
		base := 20000 + 2*rand.IntN(6000)
		if portsFree(base, 2*n) {
			return base
		}
	}
	t.Fatalf("no run of %d free ports found", 2*n)
	return 0
}

func portsFree(base, count int) bool {
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			_ = l.Close()
		}
	}()
	for p := base; p < base+count; p++ {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(p)))
		if err != nil {
			return false
		}
		ls = append(ls, l)
	}
	return true
}
