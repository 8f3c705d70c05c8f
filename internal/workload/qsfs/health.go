package qsfs

import (
	"time"

	"github.com/zerogrid/zerogrid/internal/workload/statefile"
)

// Health states the mount process reports.
const (
	StateStarting = "starting" // opening the store, not mounted yet
	StateHealthy  = "healthy"  // mounted; every shard's backend answers
	StateDegraded = "degraded" // mounted; some backends holding shards do not answer
	StateFailed   = "failed"   // the store could not be opened or mounted
)

// Health is the mount process's health file.
type Health struct {
	State   string    `json:"state"`
	Reason  string    `json:"reason,omitempty"`
	Missing []string  `json:"missing,omitempty"` // backend ids
	Time    time.Time `json:"time"`
}

func writeHealth(path string, h Health) error { return statefile.Save(path, &h) }

func readHealth(path string) (Health, bool, error) {
	var h Health
	ok, err := statefile.Load(path, &h)
	return h, ok, err
}
