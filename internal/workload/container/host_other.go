//go:build !linux

package container

import "errors"

// Available reports why this machine cannot run containers: they need
// Linux.
func Available(runcBin, ipBin string) error { return errors.New("containers need Linux") }

func cgroupDirs(path string) ([]string, error) { return nil, nil }

func removeCgroupParents(parents ...string) {}

func noFileLimit() uint64 { return 1024 }
