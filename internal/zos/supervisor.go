package zos

import (
	"context"
	"errors"
	"log/slog"
	"time"
)

// Defaults of Supervisor.
const (
	DefaultMinBackoff = time.Second
	DefaultMaxBackoff = time.Minute
	DefaultStable     = time.Minute
)

// StartFunc starts the node agent from a verified release and returns a
// channel that receives one description of how it ended ("exit status 2").
type StartFunc func(ctx context.Context, rel Release) (<-chan string, error)

// Supervisor keeps the node agent running: it fetches the release through
// Source, starts it, and when the fetch is refused, the start fails or the
// agent exits, tries again after a backoff that doubles from MinBackoff to
// MaxBackoff and resets once an agent ran for Stable. Every refusal and
// every exit is logged. The release is fetched again for every start, so
// a repaired hub is picked up and the bytes are verified each time.
type Supervisor struct {
	Source ReleaseSource
	Start  StartFunc
	Log    *slog.Logger

	MinBackoff, MaxBackoff, Stable time.Duration // zero: the defaults
	Now                            func() time.Time
	// Sleep waits d or until ctx ends (default: a timer).
	Sleep func(ctx context.Context, d time.Duration)
}

// Run supervises until ctx ends; it returns ctx's error.
func (s *Supervisor) Run(ctx context.Context) error {
	s.setDefaults()
	var delay time.Duration
	fail := func() {
		delay = min(max(2*delay, s.MinBackoff), s.MaxBackoff)
		s.Log.Info("next agent attempt", "in", delay.String())
		s.Sleep(ctx, delay)
	}
	for ctx.Err() == nil {
		rel, err := s.Source.Fetch(ctx)
		if err != nil {
			if errors.Is(err, ErrReleaseRefused) {
				s.Log.Error("REFUSED node release: it is not run", "err", err)
			} else {
				s.Log.Warn("cannot fetch the node release", "err", err)
			}
			fail()
			continue
		}
		done, err := s.Start(ctx, rel)
		if err != nil {
			s.Log.Error("cannot start the node agent", "version", rel.Version, "err", err)
			fail()
			continue
		}
		started := s.Now()
		s.Log.Info("node agent started from memory", "version", rel.Version)
		var how string
		select {
		case how = <-done:
		case <-ctx.Done():
			return ctx.Err()
		}
		ran := s.Now().Sub(started)
		s.Log.Warn("node agent ended", "how", how, "after", ran.Round(time.Millisecond).String())
		if ran >= s.Stable {
			delay = 0
		}
		fail()
	}
	return ctx.Err()
}

func (s *Supervisor) setDefaults() {
	if s.Log == nil {
		s.Log = slog.New(slog.DiscardHandler)
	}
	if s.MinBackoff <= 0 {
		s.MinBackoff = DefaultMinBackoff
	}
	if s.MaxBackoff <= 0 {
		s.MaxBackoff = DefaultMaxBackoff
	}
	if s.Stable <= 0 {
		s.Stable = DefaultStable
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	if s.Sleep == nil {
		s.Sleep = func(ctx context.Context, d time.Duration) {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
			}
		}
	}
}
