package overlay

import "time"

// Clock is the time source of the key exchange, its watchdog and the
// post-quantum policy. Its methods are safe for concurrent use. WireGuard
// itself (handshakes, rekeying, the handshake times the device reports)
// always runs on the system clock.
type Clock interface {
	Now() time.Time
	// After returns a channel that receives the time once d has passed.
	After(d time.Duration) <-chan time.Time
}

// systemClock is the Clock of a running node.
type systemClock struct{}

func (systemClock) Now() time.Time                         { return time.Now() }
func (systemClock) After(d time.Duration) <-chan time.Time { return time.After(d) }
