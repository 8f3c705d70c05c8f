package auth

import (
	"crypto/rand"
	"encoding/base64"
	"sync"
	"time"
)

// MaxFlows bounds the pending challenges a store holds, so that unsigned
// requests cannot grow memory without bound.
const MaxFlows = 4096

// Flows is a set of single-use pending values (a sign-in challenge, a
// transaction waiting for its assertion) under random ids, each with an
// expiry. Take removes a value: it can be used once. Safe for concurrent use.
type Flows[T any] struct {
	mu  sync.Mutex
	now func() time.Time
	m   map[string]flow[T]
}

type flow[T any] struct {
	v       T
	expires time.Time
}

// NewFlows makes an empty store; now is the clock (nil: time.Now).
func NewFlows[T any](now func() time.Time) *Flows[T] {
	if now == nil {
		now = time.Now
	}
	return &Flows[T]{now: now, m: map[string]flow[T]{}}
}

// Put stores v until ttl passes and returns its new random id.
func (f *Flows[T]) Put(v T, ttl time.Duration) (string, error) {
	id := RandomToken()
	f.mu.Lock()
	defer f.mu.Unlock()
	now := f.now()
	if len(f.m) >= MaxFlows {
		for k, e := range f.m {
			if now.After(e.expires) {
				delete(f.m, k)
			}
		}
		if len(f.m) >= MaxFlows {
			return "", ErrTooManyPending
		}
	}
	f.m[id] = flow[T]{v: v, expires: now.Add(ttl)}
	return id, nil
}

// Take removes and returns the value under id, or ErrUnknownFlow if there
// is none or it expired.
func (f *Flows[T]) Take(id string) (T, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.m[id]
	delete(f.m, id)
	var zero T
	if !ok || f.now().After(e.expires) {
		return zero, ErrUnknownFlow
	}
	return e.v, nil
}

// Peek returns the value under id without using it up.
func (f *Flows[T]) Peek(id string) (T, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	e, ok := f.m[id]
	var zero T
	if !ok || f.now().After(e.expires) {
		return zero, ErrUnknownFlow
	}
	return e.v, nil
}

// RandomToken is 32 random bytes in base64url: session tokens, flow ids,
// CSRF tokens.
func RandomToken() string {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on Linux
	}
	return base64.RawURLEncoding.EncodeToString(b)
}
