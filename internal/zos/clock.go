package zos

import (
	"log/slog"
	"time"
)

// raiseClock keeps the clock from reading earlier than floor, the image's
// build time: a node whose real-time clock is unset or was turned back
// would otherwise accept certificates and signed metadata that expired
// before the image existed. It sets the clock to floor when now is
// earlier. A clock set later than the truth only makes expiries come
// early: the node refuses, it does not accept. docs/threat-model.md says
// what this does and does not protect.
func raiseClock(log *slog.Logger, now time.Time, floor time.Time, set func(time.Time) error) {
	if !now.Before(floor) {
		log.Info("clock", "now", now.UTC().Format(time.RFC3339), "floor", floor.UTC().Format(time.RFC3339))
		return
	}
	if err := set(floor); err != nil {
		log.Error("clock is before the image's build time and cannot be set", "now", now.UTC(), "floor", floor.UTC(), "err", err)
		return
	}
	log.Warn("clock was before the image's build time; set to it", "was", now.UTC().Format(time.RFC3339), "now", floor.UTC().Format(time.RFC3339))
}
