package workload

import "time"

// Clock is the time source managers use for backoff, restart windows and
// event times; tests inject a controllable one.
type Clock interface {
	Now() time.Time
	// After is time.After: it sends once d has passed.
	After(d time.Duration) <-chan time.Time
}

// SystemClock is the real clock.
type SystemClock struct{}

func (SystemClock) Now() time.Time                         { return time.Now() }
func (SystemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
