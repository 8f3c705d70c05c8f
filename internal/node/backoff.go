package node

import "time"

// backoff spaces retries of a failing deployment: 1 s doubling to 1 min,
// forever.
type backoff struct {
	next  time.Time
	delay time.Duration
}

func (b *backoff) due(now time.Time) bool { return !now.Before(b.next) }

func (b *backoff) fail(now time.Time) {
	switch {
	case b.delay == 0:
		b.delay = time.Second
	case b.delay < time.Minute:
		b.delay *= 2
	}
	b.next = now.Add(b.delay)
}

func (b *backoff) reset() { b.delay, b.next = 0, time.Time{} }

func newTicker(d time.Duration) *time.Ticker { return time.NewTicker(d) }
