package tunnel

import (
	"slices"
	"sync"
	"testing"
	"time"
)

// fakeClock is a Clock the test moves by hand: After fires only when
// Advance passes its time.
type fakeClock struct {
	mu      sync.Mutex
	now     time.Time
	waiters []fakeWaiter
}

type fakeWaiter struct {
	at time.Time
	ch chan time.Time
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) After(d time.Duration) <-chan time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	ch := make(chan time.Time, 1)
	if d <= 0 {
		ch <- c.now
		return ch
	}
	c.waiters = append(c.waiters, fakeWaiter{at: c.now.Add(d), ch: ch})
	return ch
}

// Advance moves the clock by d and fires every After that is due.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	kept := c.waiters[:0]
	for _, w := range c.waiters {
		if w.at.After(c.now) {
			kept = append(kept, w)
			continue
		}
		w.ch <- w.at
	}
	c.waiters = kept
}

// Pending returns how long each waiting After still has to go, shortest
// first.
func (c *fakeClock) Pending() []time.Duration {
	c.mu.Lock()
	defer c.mu.Unlock()
	var out []time.Duration
	for _, w := range c.waiters {
		out = append(out, w.at.Sub(c.now))
	}
	slices.Sort(out)
	return out
}

// waitPending waits (in real time: for goroutines to get there) until an
// After with exactly d to go is waiting.
func (c *fakeClock) waitPending(t testing.TB, d time.Duration) {
	t.Helper()
	waitFor(t, "a timer of "+d.String()+" on the clock", 10*time.Second, func() bool {
		return slices.Contains(c.Pending(), d)
	})
}

// advanceUntil moves the clock by step at a time, letting the goroutines
// react in between, until cond holds.
func (c *fakeClock) advanceUntil(t testing.TB, step time.Duration, what string, cond func() bool) {
	t.Helper()
	end := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(end) {
			t.Fatalf("%s: not reached after the clock moved to %s", what, c.Now())
		}
		c.Advance(step)
		time.Sleep(5 * time.Millisecond)
	}
}
