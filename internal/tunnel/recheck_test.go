package tunnel

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
)

// flaky answers like holders, or fails to answer at all while down; it
// counts the questions.
type flaky struct {
	*holders
	down  bool
	asked int
}

func (f *flaky) Authorize(ctx context.Context, name string, key identity.PublicKey) error {
	f.mu.Lock()
	down := f.down
	f.asked++
	f.mu.Unlock()
	if down {
		return errors.New("ledger unreachable")
	}
	return f.holders.Authorize(ctx, name, key)
}

func (f *flaky) set(down bool, m map[string][]identity.PublicKey) {
	f.mu.Lock()
	f.down = down
	if m != nil {
		f.m = m
	}
	f.mu.Unlock()
}

func (f *flaky) questions() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.asked
}

// TestRecheckCutsReleasedName: a live tunnel's names are asked again
// every Recheck on the gateway's clock; a ledger that cannot answer cuts
// nothing, and a name the ledger no longer gives the key is dropped at
// the next recheck, the backend learning why.
func TestRecheckCutsReleasedName(t *testing.T) {
	t.Parallel()
	const recheck = 30 * time.Second
	clk := newFakeClock()
	backend := newKey(t)
	auth := &flaky{holders: &holders{m: map[string][]identity.PublicKey{
		"web": {backend.Public()}, "api": {backend.Public()},
	}}}
	key := newKey(t)
	// Heartbeats far beyond what the test moves the clock by.
	srv, err := NewServer(ServerConfig{Key: key, Authorizer: auth, Logger: testLogger(t), Recheck: recheck, Heartbeat: 24 * time.Hour, Clock: clk})
	if err != nil {
		t.Fatal(err)
	}
	gw := serveOn(t, srv, key, "127.0.0.1", true)
	c, _ := runClient(t, ClientConfig{
		Key: backend,
		Names: []Route{
			{Name: "web", Target: echoTarget(t, "b1")},
			{Name: "api", Target: echoTarget(t, "b1")},
		},
		Gateways:  []Gateway{{Addr: gw.addr, Key: gw.key.Public()}},
		Heartbeat: 24 * time.Hour, Clock: clk,
	})
	waitFor(t, "tunnel up", 10*time.Second, connected(c, ""))
	asked := auth.questions() // the hello's
	clk.waitPending(t, recheck)
	if n := auth.questions(); n != asked {
		t.Fatalf("%d questions before the clock reached the first recheck", n-asked)
	}

	auth.set(true, nil) // the ledger is unreachable for three rechecks
	for i := 1; i <= 3; i++ {
		clk.Advance(recheck)
		waitFor(t, "the recheck's questions", 10*time.Second, func() bool { return auth.questions() == asked+2*i })
		clk.waitPending(t, recheck)
	}
	if st := c.Status()[0]; !st.Connected || st.Reconnects != 0 {
		t.Fatalf("an unanswered recheck cut the tunnel: %+v", st)
	}
	if _, err := roundTrip(t, gw.srv, "web", "x"); err != nil {
		t.Fatal(err)
	}

	auth.set(false, map[string][]identity.PublicKey{"api": {backend.Public()}}) // web released
	clk.Advance(recheck)
	// The backend reconnects (its backoff is on the clock too) and is told.
	clk.advanceUntil(t, time.Second, "web refused", func() bool {
		st := c.Status()[0]
		return st.Connected && st.Refused["web"] != ""
	})
	if r := c.Status()[0].Refused["web"]; !strings.Contains(r, "not held by key") {
		t.Fatalf("reason %q", r)
	}
	if _, err := gw.srv.Dial(context.Background(), "web", StreamMeta{}); !errors.Is(err, ErrNoBackend) {
		t.Fatalf("Dial(web) after release = %v, want ErrNoBackend", err)
	}
	if _, err := roundTrip(t, gw.srv, "api", "still served"); err != nil {
		t.Fatal(err)
	}
}
