package gateway

import (
	"crypto/rand"
	"errors"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
	"github.com/zerogrid/zerogrid/internal/ledger/ledgertest"
)

// A validator that forges `/name-servers/NAME` (another chain's state, where
// the attacker holds the name and authorized its own key) does not get the
// attacker's tunnel accepted: the authorizer refuses, because the answer
// does not verify, where the honest ledger would have said "not claimed".
func TestAuthorizerRefusesForgedNameServers(t *testing.T) {
	t.Parallel()
	honest := ledgertest.Start(t, nil)
	attacker := ledgertest.Start(t, nil)
	mallory, _ := identity.GenerateKey(rand.Reader)
	backend, _ := identity.GenerateKey(rand.Reader)
	for _, op := range []ledger.Op{
		{TwinRegister: &ledger.TwinRegister{}},
		{NameClaim: &ledger.NameClaim{Name: "bank"}},
		{NameAuthorize: &ledger.NameAuthorize{Name: "bank", Keys: []identity.PublicKey{backend.Public()}}},
	} {
		if _, err := attacker.Signer(mallory).Submit(t.Context(), op); err != nil {
			t.Fatal(err)
		}
	}
	proxy := ledgertest.NewForgingProxy(t, honest.URL(), attacker.URL())
	root, err := honest.TrustRoot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(t.Context(), proxy.URL, client.Options{TrustRoot: &root})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	a := NewLedgerAuthorizer(c, time.Millisecond)
	if err := a.Authorize(t.Context(), "bank", backend.Public()); !errors.Is(err, ErrNotAuthorized) {
		t.Fatalf("honest ledger: %v, want not authorized (the name is not claimed)", err)
	}
	proxy.Forge(ledgertest.ForgeState)
	time.Sleep(10 * time.Millisecond) // past the authorizer's 1 ms cache
	err = a.Authorize(t.Context(), "bank", backend.Public())
	if err == nil || !errors.Is(err, client.ErrUntrusted) {
		t.Fatalf("forged name servers: %v, want a refusal because the answer does not verify", err)
	}
}
