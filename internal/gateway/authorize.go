package gateway

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
)

// NameServerSource answers which keys may serve a name; the ledger
// client implements it. Safe for concurrent use; client.ErrNotFound (or
// an error wrapping it) means the name is not claimed.
type NameServerSource interface {
	NameServers(ctx context.Context, name string) (ledger.NameServers, error)
}

// maxAuthCache bounds the authorizer's cache; past it, expired entries go
// first, then everything.
const maxAuthCache = 4096

// LedgerAuthorizer decides which backend keys may serve a name from the
// name's contract on the ledger (tunnel.Authorizer). Answers, including
// "not claimed", are cached for TTL; failures to reach the ledger are not
// cached and refuse the tunnel, which retries.
type LedgerAuthorizer struct {
	src NameServerSource
	ttl time.Duration
	now func() time.Time

	mu    sync.Mutex
	cache map[string]authEntry
}

type authEntry struct {
	ns      ledger.NameServers
	claimed bool
	expires time.Time
}

// NewLedgerAuthorizer caches answers from src for ttl (5s when 0).
func NewLedgerAuthorizer(src NameServerSource, ttl time.Duration) *LedgerAuthorizer {
	if ttl <= 0 {
		ttl = 5 * time.Second
	}
	return &LedgerAuthorizer{src: src, ttl: ttl, now: time.Now, cache: make(map[string]authEntry)}
}

// Authorize returns nil when key may serve name, an ErrNotAuthorized
// error saying why not, or another error when the ledger cannot be asked.
func (a *LedgerAuthorizer) Authorize(ctx context.Context, name string, key identity.PublicKey) error {
	e, err := a.lookup(ctx, name)
	if err != nil {
		return err
	}
	if !e.claimed {
		return fmt.Errorf("%w: name %q is not claimed on the ledger (claim it with a name contract first)", ErrNotAuthorized, name)
	}
	for _, k := range e.ns.Keys {
		if k.Equal(key) {
			return nil
		}
	}
	return fmt.Errorf("%w: key %s is not authorized for name %q (owner twin %d): the owner must authorize it or deploy a gateway-name workload on a node with this key",
		ErrNotAuthorized, key, name, e.ns.Owner)
}

func (a *LedgerAuthorizer) lookup(ctx context.Context, name string) (authEntry, error) {
	now := a.now()
	a.mu.Lock()
	e, ok := a.cache[name]
	a.mu.Unlock()
	if ok && now.Before(e.expires) {
		return e, nil
	}
	ns, err := a.src.NameServers(ctx, name)
	switch {
	case errors.Is(err, client.ErrNotFound):
		e = authEntry{expires: now.Add(a.ttl)}
	case err != nil:
		return authEntry{}, fmt.Errorf("gateway: ask the ledger who may serve %q: %w (the tunnel will retry)", name, err)
	default:
		e = authEntry{ns: ns, claimed: true, expires: now.Add(a.ttl)}
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if len(a.cache) >= maxAuthCache {
		for k, v := range a.cache {
			if !now.Before(v.expires) {
				delete(a.cache, k)
			}
		}
		if len(a.cache) >= maxAuthCache {
			clear(a.cache)
		}
	}
	a.cache[name] = e
	return e, nil
}
