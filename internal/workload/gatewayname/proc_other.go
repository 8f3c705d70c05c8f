//go:build !linux

package gatewayname

import (
	"errors"
	"os"
	"time"
)

// Tunnel client processes are supervised through pidfds: Linux only.
var errNoPidfd = errors.New("gateway-name workloads need Linux (pidfds)")

type proc struct{ pid int }

type procID struct {
	PID   int    `json:"pid"`
	Start uint64 `json:"start"`
	Boot  string `json:"boot"`
}

func spawn([]string, []*os.File, *os.File) (*proc, error) { return nil, errNoPidfd }
func adopt(procID) (*proc, error)                         { return nil, errNoPidfd }
func (p *proc) id() procID                                { return procID{} }
func (p *proc) wait(*os.File) (bool, error)               { return false, errNoPidfd }
func (p *proc) kill(time.Duration) (string, error)        { return "", errNoPidfd }
func (p *proc) status() string                            { return "" }
func (p *proc) close()                                    {}

func dropPrivileges(uid, gid uint32) error { return errNoPidfd }
