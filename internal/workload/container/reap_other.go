//go:build !linux

package container

import (
	"time"

	"github.com/zerogrid/zerogrid/internal/workload"
)

func becomeSubreaper() error { return workload.ErrUnsupported }

type procWatch struct{}

func watchProc(pid int) (*procWatch, error) { return nil, workload.ErrUnsupported }

func (w *procWatch) wait(tick time.Duration, check func() bool) (exitStatus, bool) {
	return exitStatus{}, false
}

func (w *procWatch) close() {}

func reap(pid int) {}

func collect(pid int) exitStatus { return exitStatus{} }
