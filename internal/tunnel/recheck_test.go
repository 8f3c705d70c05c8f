package tunnel

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
)

// flaky answers like holders, or fails to answer at all while down.
type flaky struct {
	*holders
	down bool
}

func (f *flaky) Authorize(ctx context.Context, name string, key identity.PublicKey) error {
	f.mu.Lock()
	down := f.down
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

// TestRecheckCutsReleasedName: a live tunnel stops serving a name the
// ledger no longer gives its key, within the recheck interval, and the
// backend learns why; a ledger that cannot be asked cuts nothing.
func TestRecheckCutsReleasedName(t *testing.T) {
	t.Parallel()
	backend := newKey(t)
	auth := &flaky{holders: &holders{m: map[string][]identity.PublicKey{
		"web": {backend.Public()}, "api": {backend.Public()},
	}}}
	key := newKey(t)
	srv, err := NewServer(ServerConfig{Key: key, Authorizer: auth, Logger: testLogger(t), Recheck: 100 * time.Millisecond})
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
		Gateways: []Gateway{{Addr: gw.addr, Key: gw.key.Public()}},
	})
	waitFor(t, "tunnel up", 10*time.Second, connected(c, ""))

	auth.set(true, nil) // the ledger is unreachable for a while
	time.Sleep(500 * time.Millisecond)
	if st := c.Status()[0]; !st.Connected || st.Reconnects != 0 {
		t.Fatalf("an unanswered recheck cut the tunnel: %+v", st)
	}
	if _, err := roundTrip(t, gw.srv, "web", "x"); err != nil {
		t.Fatal(err)
	}

	auth.set(false, map[string][]identity.PublicKey{"api": {backend.Public()}}) // web released
	waitFor(t, "web refused", 10*time.Second, func() bool {
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
