package auth

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/passkeytest"
)

type testClock struct{ off atomic.Int64 }

func (c *testClock) now() time.Time {
	return time.Unix(1_800_000_000, 0).Add(time.Duration(c.off.Load()))
}
func (c *testClock) advance(d time.Duration) { c.off.Add(int64(d)) }

func TestFlowsAreSingleUseAndExpire(t *testing.T) {
	t.Parallel()
	clk := &testClock{}
	f := NewFlows[int](clk.now)
	id, err := f.Put(7, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	if v, err := f.Take(id); err != nil || v != 7 {
		t.Fatalf("take: %v %v", v, err)
	}
	if _, err := f.Take(id); !errors.Is(err, ErrUnknownFlow) {
		t.Fatalf("second take: %v", err)
	}
	id, _ = f.Put(8, time.Minute)
	clk.advance(time.Minute + time.Second)
	if _, err := f.Take(id); !errors.Is(err, ErrUnknownFlow) {
		t.Fatalf("expired take: %v", err)
	}
}

func TestSessions(t *testing.T) {
	t.Parallel()
	clk := &testClock{}
	s := NewSessions(time.Minute, clk.now)
	var dev identity.PublicKey
	dev[0] = 1
	a, tokA := s.Create(1, dev, "passkey", "r", "ua")
	b, tokB := s.Create(2, dev, "passkey", "r", "ua")
	if got, err := s.Lookup(tokA); err != nil || got.Twin != 1 {
		t.Fatalf("lookup: %+v %v", got, err)
	}
	if err := a.CheckCSRF(b.CSRF); !errors.Is(err, ErrCSRF) {
		t.Fatal("another session's CSRF token passed")
	}
	if err := a.CheckCSRF(""); !errors.Is(err, ErrCSRF) {
		t.Fatal("an empty CSRF token passed")
	}
	if s.Revoke(1, b.ID) {
		t.Fatal("twin 1 revoked twin 2's session")
	}
	if len(s.List(1)) != 1 || len(s.List(2)) != 1 {
		t.Fatal("lists mix twins")
	}
	s.RevokeDevice(2, dev)
	if _, err := s.Lookup(tokB); !errors.Is(err, ErrNoSession) {
		t.Fatal("a session of a revoked device lives on")
	}
	clk.advance(time.Minute + time.Second)
	if _, err := s.Lookup(tokA); !errors.Is(err, ErrNoSession) {
		t.Fatal("an expired session lives on")
	}
}

func TestRegistrationToken(t *testing.T) {
	t.Parallel()
	a := passkeytest.New("portal.grid.localhost", "https://portal.grid.localhost:8444", true)
	op := &ledger.TwinAddPasskey{Name: "k", Credential: a.Credential, PublicKey: a.COSEKey(), Origin: a.Origin, RPID: a.RPID}
	tok, err := EncodeRegistration(5, op)
	if err != nil {
		t.Fatal(err)
	}
	twin, got, err := DecodeRegistration(" " + tok + "\n")
	if err != nil || twin != 5 || got.Origin != op.Origin || string(got.Credential) != string(op.Credential) {
		t.Fatalf("round trip: %d %+v %v", twin, got, err)
	}
	for _, bad := range []string{"", "zgpasskey1-", tok[:len(tok)-3], strings.Replace(tok, "zgpasskey1-", "zgpasskey2-", 1), tok + "AA"} {
		if _, _, err := DecodeRegistration(bad); err == nil {
			t.Errorf("damaged token %q accepted", bad)
		}
	}
}

// FuzzDecodeRegistration: a pasted token is untrusted text.
func FuzzDecodeRegistration(f *testing.F) {
	a := passkeytest.New("portal.grid.localhost", "https://portal.grid.localhost:8444", false)
	tok, _ := EncodeRegistration(1, &ledger.TwinAddPasskey{Credential: a.Credential, PublicKey: a.COSEKey(), Origin: a.Origin, RPID: a.RPID})
	f.Add(tok)
	f.Add("zgpasskey1-oA")
	f.Fuzz(func(t *testing.T, s string) {
		twin, op, err := DecodeRegistration(s)
		if err == nil && (twin == 0 || op == nil || op.Origin == "") {
			t.Fatal("accepted a token without twin or origin")
		}
	})
}

// FuzzParseResponse: a browser's assertion answer is untrusted JSON.
func FuzzParseResponse(f *testing.F) {
	a := passkeytest.New("portal.grid.localhost", "https://portal.grid.localhost:8444", false)
	auth, client, sig := a.Assert(make([]byte, 32), passkeytest.Options{})
	id := base64.RawURLEncoding.EncodeToString(a.Credential)
	good, _ := json.Marshal(map[string]any{"id": id, "rawId": id, "type": "public-key", "response": map[string]string{
		"authenticatorData": base64.RawURLEncoding.EncodeToString(auth), "clientDataJSON": base64.RawURLEncoding.EncodeToString(client),
		"signature": base64.RawURLEncoding.EncodeToString(sig)}})
	f.Add(good)
	f.Add([]byte(`{"id":"","type":"public-key","response":{}}`))
	f.Add([]byte(`null`))
	pk := &ledger.Passkey{Credential: a.Credential, PublicKey: a.COSEKey(), Origin: a.Origin, RPID: a.RPID}
	f.Fuzz(func(t *testing.T, b []byte) {
		_, as, err := ParseResponse(b)
		if err != nil {
			return
		}
		var ch [32]byte
		_, _ = ledger.VerifyAssertion(pk, as, ch)
	})
}

type stubTwins map[uint64]*ledger.Twin

func (s stubTwins) Twin(_ context.Context, id uint64) (*ledger.Twin, error) {
	if t, ok := s[id]; ok {
		return t, nil
	}
	return nil, errors.New("no such twin")
}

// FuzzLoginMessages: approvals and pending queries arrive as untrusted
// JSON from any client.
func FuzzLoginMessages(f *testing.F) {
	key, _ := identity.NewPrivateKey(make([]byte, 32))
	clk := &testClock{}
	l := NewLogins("https://portal.grid.localhost:8444", stubTwins{1: {ID: 1, Root: key.Public()}}, clk.now)
	lr, n, _, _ := l.Request(1, "r", "ua")
	ap := Approval{Request: lr.ID, Origin: lr.Origin, Twin: 1, Number: n, Expires: lr.Expires}
	sig, _ := key.Sign(TagLoginApproval, 1, ap)
	good, _ := json.Marshal(Signed[Approval]{Value: ap, Key: key.Public(), Sig: sig})
	f.Add(good)
	f.Add([]byte(`{"value":{"twin":1},"key":"zgpub1","sig":"00"}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var a Signed[Approval]
		if json.Unmarshal(b, &a) == nil {
			_, _ = l.Approve(context.Background(), a)
		}
		var q Signed[PendingQuery]
		if json.Unmarshal(b, &q) == nil {
			_, _ = l.Pending(context.Background(), q)
		}
	})
}
