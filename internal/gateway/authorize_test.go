package gateway

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
)

type fakeNameServers struct {
	mu    sync.Mutex
	calls int
	names map[string]ledger.NameServers
	err   error
}

func (f *fakeNameServers) NameServers(_ context.Context, name string) (ledger.NameServers, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return ledger.NameServers{}, f.err
	}
	ns, ok := f.names[name]
	if !ok {
		return ns, fmt.Errorf("%w: name %q is not claimed", client.ErrNotFound, name)
	}
	return ns, nil
}

func testKey(t *testing.T, fill byte) identity.PublicKey {
	t.Helper()
	seed := make([]byte, 32)
	for i := range seed {
		seed[i] = fill
	}
	k, err := identity.NewPrivateKey(seed)
	if err != nil {
		t.Fatal(err)
	}
	return k.Public()
}

func TestLedgerAuthorizer(t *testing.T) {
	t.Parallel()
	good, bad := testKey(t, 1), testKey(t, 2)
	src := &fakeNameServers{names: map[string]ledger.NameServers{
		"shop": {Name: "shop", Owner: 7, Keys: []identity.PublicKey{good}},
	}}
	a := NewLedgerAuthorizer(src, time.Minute)
	now := time.Unix(1e9, 0)
	a.now = func() time.Time { return now }
	ctx := t.Context()

	if err := a.Authorize(ctx, "shop", good); err != nil {
		t.Fatalf("listed key refused: %v", err)
	}
	err := a.Authorize(ctx, "shop", bad)
	if !errors.Is(err, ErrNotAuthorized) || !strings.Contains(err.Error(), bad.String()) ||
		!strings.Contains(err.Error(), `not authorized for name "shop" (owner twin 7)`) {
		t.Fatalf("unlisted key: %v", err)
	}
	if src.calls != 1 {
		t.Fatalf("%d ledger queries for one name within the TTL, want 1", src.calls)
	}
	err = a.Authorize(ctx, "free", good)
	if !errors.Is(err, ErrNotAuthorized) || !strings.Contains(err.Error(), "not claimed") {
		t.Fatalf("unclaimed name: %v", err)
	}
	a.Authorize(ctx, "free", good)
	if src.calls != 2 {
		t.Fatalf("not-claimed answer not cached: %d queries", src.calls)
	}

	// The owner revokes the key; after the TTL the gateway refuses it.
	src.mu.Lock()
	src.names["shop"] = ledger.NameServers{Name: "shop", Owner: 7}
	src.mu.Unlock()
	if err := a.Authorize(ctx, "shop", good); err != nil {
		t.Fatalf("within TTL: %v", err)
	}
	now = now.Add(time.Minute + time.Second)
	if err := a.Authorize(ctx, "shop", good); !errors.Is(err, ErrNotAuthorized) {
		t.Fatalf("revoked key after TTL: %v", err)
	}

	// A ledger failure refuses, is not an authorization verdict, and is
	// not cached.
	now = now.Add(2 * time.Minute)
	src.mu.Lock()
	src.err = errors.New("connection refused")
	src.mu.Unlock()
	err = a.Authorize(ctx, "shop", good)
	if err == nil || errors.Is(err, ErrNotAuthorized) || !strings.Contains(err.Error(), "retry") {
		t.Fatalf("ledger down: %v", err)
	}
	src.mu.Lock()
	src.err = nil
	src.names["shop"] = ledger.NameServers{Name: "shop", Owner: 7, Keys: []identity.PublicKey{good}}
	src.mu.Unlock()
	if err := a.Authorize(ctx, "shop", good); err != nil {
		t.Fatalf("ledger back: %v", err)
	}
}
