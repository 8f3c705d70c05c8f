package portal

import (
	"context"
	"errors"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/auth"
	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
)

// clock is a test clock that can jump forward.
type clock struct{ off atomic.Int64 }

func (c *clock) now() time.Time          { return time.Now().Add(time.Duration(c.off.Load())) }
func (c *clock) advance(d time.Duration) { c.off.Add(int64(d)) }

func approver(ts interface{ Client() *http.Client }, origin string, key identity.PrivateKey, twin uint64, clk *clock) *auth.Approver {
	return &auth.Approver{Portal: origin, HTTP: rewrite(ts.Client(), origin), Key: key, Twin: twin, Now: clk.now}
}

// rewrite makes a client that sends requests for origin to the test
// server (the test cannot make portal.grid.localhost resolve for Go).
func rewrite(hc *http.Client, origin string) *http.Client {
	c := *hc
	base := c.Transport
	c.Transport = roundTripper(func(r *http.Request) (*http.Response, error) {
		r = r.Clone(r.Context())
		r.URL.Host = "127.0.0.1:" + r.URL.Port()
		return base.RoundTrip(r)
	})
	return &c
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// askLogin opens a number-matching request as a browser would.
func (b *browser) askLogin(twin uint64) (id, poll string, number uint8) {
	b.t.Helper()
	code, m := b.postJSON("/api/login/request", map[string]string{"twin": u(twin)}, "")
	if code != http.StatusOK {
		b.t.Fatalf("login request: %d %v", code, m)
	}
	return m["id"].(string), m["poll"].(string), uint8(m["number"].(float64))
}

func (b *browser) pollLogin(id, poll string) (int, map[string]any) {
	return b.postJSON("/api/login/poll", map[string]string{"id": id, "poll": poll}, "")
}

func TestNumberMatching(t *testing.T) {
	g := newGrid(t)
	clk := &clock{}
	_, ts, origin := portalServer(t, g, Options{Now: clk.now})
	ctx := context.Background()
	dev := newKey(t) // a device key; the root key approves as well
	ap := approver(ts, origin, g.root, g.twin, clk)

	t.Run("RightNumberSignsIn", func(t *testing.T) {
		b := newBrowser(t, ts, origin)
		id, poll, number := b.askLogin(g.twin)
		if _, m := b.pollLogin(id, poll); m["approved"] != false {
			t.Fatalf("approved before anyone approved: %v", m)
		}
		reqs, err := ap.Pending(ctx)
		if err != nil || len(reqs) != 1 || reqs[0].ID != id || reqs[0].Origin != origin {
			t.Fatalf("pending: %+v %v", reqs, err)
		}
		if _, err := ap.Approve(ctx, reqs[0], number); err != nil {
			t.Fatalf("approve: %v", err)
		}
		if code, m := b.pollLogin(id, poll); code != http.StatusOK || m["approved"] != true {
			t.Fatalf("poll after approval: %d %v", code, m)
		}
		if code, _ := b.get("/deployments"); code != http.StatusOK {
			t.Fatalf("signed in by number matching, cannot read: %d", code)
		}
		// The approval is used up: replaying it fails.
		if _, err := ap.Approve(ctx, reqs[0], number); err == nil {
			t.Fatal("a used approval was accepted again")
		}
	})
	t.Run("ThreeWrongNumbersCancel", func(t *testing.T) {
		b := newBrowser(t, ts, origin)
		id, poll, number := b.askLogin(g.twin)
		reqs, _ := ap.Pending(ctx)
		wrong := number%89 + 10
		for i, want := range []error{auth.ErrWrongNumber, auth.ErrWrongNumber, auth.ErrCancelled} {
			left, err := ap.Approve(ctx, reqs[len(reqs)-1], wrong)
			if !errors.Is(err, want) {
				t.Fatalf("wrong number %d: %v, want %v", i+1, err, want)
			}
			if want == auth.ErrWrongNumber && left != 2-i {
				t.Fatalf("attempts left %d, want %d", left, 2-i)
			}
		}
		if _, err := ap.Approve(ctx, reqs[len(reqs)-1], number); err == nil {
			t.Fatal("the right number after three wrong ones signed in")
		}
		if code, _ := b.pollLogin(id, poll); code != http.StatusGone {
			t.Fatalf("cancelled request polls %d", code)
		}
	})
	t.Run("ErrApprovalReplayedForAnotherRequest", func(t *testing.T) {
		b := newBrowser(t, ts, origin)
		id1, _, n1 := b.askLogin(g.twin)
		id2, poll2, _ := b.askLogin(g.twin)
		reqs, _ := ap.Pending(ctx)
		var r1 auth.LoginRequest
		for _, r := range reqs {
			if r.ID == id1 {
				r1 = r
			}
		}
		v := auth.Approval{Request: id1, Origin: origin, Twin: g.twin, Number: n1, Expires: r1.Expires}
		sig, err := g.root.Sign(auth.TagLoginApproval, 1, v)
		if err != nil {
			t.Fatal(err)
		}
		// The approval signed for request 1, presented for request 2.
		v.Request = id2
		if code, m := b.postJSON("/api/login/approve", auth.Signed[auth.Approval]{Value: v, Key: g.root.Public(), Sig: sig}, ""); code != http.StatusUnauthorized {
			t.Fatalf("approval replayed for another request: %d %v", code, m)
		}
		if _, m := b.pollLogin(id2, poll2); m["approved"] == true {
			t.Fatal("request 1's approval signed request 2 in")
		}
	})
	t.Run("ErrExpired", func(t *testing.T) {
		b := newBrowser(t, ts, origin)
		id, _, number := b.askLogin(g.twin)
		reqs, _ := ap.Pending(ctx)
		var r auth.LoginRequest
		for _, x := range reqs {
			if x.ID == id {
				r = x
			}
		}
		clk.advance(auth.LoginTTL + time.Second)
		if _, err := ap.Approve(ctx, r, number); err == nil {
			t.Fatal("an approval after expiry was accepted")
		}
	})
	t.Run("ErrNotTheTwinsKey", func(t *testing.T) {
		stranger := approver(ts, origin, dev, g.twin, clk)
		if _, err := stranger.Pending(ctx); err == nil {
			t.Fatal("a key that is not the twin's listed its requests")
		}
		b := newBrowser(t, ts, origin)
		id, poll, number := b.askLogin(g.twin)
		reqs, _ := ap.Pending(ctx)
		r := reqs[len(reqs)-1]
		if _, err := stranger.Approve(ctx, r, number); err == nil {
			t.Fatal("a key that is not the twin's approved")
		}
		if _, m := b.pollLogin(id, poll); m["approved"] == true {
			t.Fatal("signed in by a stranger's approval")
		}
	})
	t.Run("ErrRevokedDevice", func(t *testing.T) {
		// A device key, approved once, then revoked: its approvals and
		// its sessions stop at the block that revoked it.
		cert, err := g.root.CertifyDevice(identity.DeviceCert{Twin: g.twin, Device: dev.Public(), Name: "phone", Created: time.Now().Unix() - 60})
		if err != nil {
			t.Fatal(err)
		}
		proof, err := identity.ProvePossession(dev, ledger.DeviceProof{Chain: g.c.Chain(), Twin: g.twin, Device: dev.Public()})
		if err != nil {
			t.Fatal(err)
		}
		submit(t, g.c.Signer(g.root), ledger.Op{TwinAddKey: &ledger.TwinAddKey{Cert: cert, Proof: proof}})
		phone := approver(ts, origin, dev, g.twin, clk)
		b := newBrowser(t, ts, origin)
		id, poll, number := b.askLogin(g.twin)
		reqs, err := phone.Pending(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range reqs {
			if r.ID == id {
				if _, err := phone.Approve(ctx, r, number); err != nil {
					t.Fatal(err)
				}
			}
		}
		if _, m := b.pollLogin(id, poll); m["approved"] != true {
			t.Fatalf("device key approval: %v", m)
		}
		submit(t, g.c.Signer(g.root), ledger.Op{TwinRevokeKey: &ledger.TwinRevokeKey{Key: dev.Public()}})
		if code, _ := b.get("/deployments"); code != http.StatusUnauthorized {
			t.Fatalf("session of a revoked device key reads: %d", code)
		}
		if _, err := phone.Pending(ctx); err == nil {
			t.Fatal("a revoked device key lists requests")
		}
	})
}
