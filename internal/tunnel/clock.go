package tunnel

import "time"

// Clock is the time source of the tunnel's own logic: heartbeats, the
// recheck interval, reconnect backoff, QUIC re-probes and hello expiry.
// Tests inject a clock they move by hand. Timeouts of the network stack
// (TLS and QUIC handshakes, FallbackAfter, QUIC's idle timeout, yamux
// keep-alives, socket deadlines) stay on real time. Implementations are
// safe for concurrent use.
type Clock interface {
	Now() time.Time
	// After sends the time once d has passed, like time.After.
	After(d time.Duration) <-chan time.Time
}

// systemClock is the real clock.
type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
