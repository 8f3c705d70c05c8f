//go:build !linux

package proc

import (
	"errors"
	"os"
	"time"
)

// errUnsupported: helper processes are watched through pidfds, which
// only Linux has.
var errUnsupported = errors.New("proc: helper processes need Linux (pidfd)")

// Proc is a process; on this platform none can be started.
type Proc struct{ PID int }

// ID finds a process again.
type ID struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
	Boot  string `json:"boot"`
}

// Spawn fails: see errUnsupported.
func Spawn(argv, env []string, log *os.File) (*Proc, error) { return nil, errUnsupported }

// Adopt finds nothing.
func Adopt(id ID) (*Proc, error) { return nil, nil }

func (p *Proc) ID() ID                         { return ID{PID: p.PID} }
func (p *Proc) Alive() bool                    { return false }
func (p *Proc) Reap() string                   { return "" }
func (p *Proc) Kill(grace time.Duration) error { return errUnsupported }
func (p *Proc) Close()                         {}
