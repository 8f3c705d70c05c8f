package container

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/zerogrid/zerogrid/internal/workload/mountinfo"
)

// Available reports why this machine cannot run containers with the given
// runc and ip binaries, or nil when it can: it needs root, runc, iproute2,
// user namespaces, cgroup cpu and memory controllers (v1 or v2) and pidfds
// (Linux 5.3).
func Available(runcBin, ipBin string) error {
	if os.Geteuid() != 0 {
		return errors.New("containers need root")
	}
	if _, err := exec.LookPath(runcBin); err != nil {
		return fmt.Errorf("runc is not installed (Debian package runc): %s not found", runcBin)
	}
	if _, err := exec.LookPath(ipBin); err != nil {
		return fmt.Errorf("ip is not installed (Debian package iproute2): %s not found", ipBin)
	}
	if err := userNamespaces(); err != nil {
		return err
	}
	if err := cgroupControllers(); err != nil {
		return err
	}
	fd, err := unix.PidfdOpen(os.Getpid(), 0)
	if err != nil {
		return fmt.Errorf("no pidfd support (Linux 5.3 or later needed): %w", err)
	}
	unix.Close(fd)
	return nil
}

// cgroupControllers checks that cpu and memory can be limited, in the
// unified hierarchy (v2) or in v1 hierarchies.
func cgroupControllers() error {
	ms, err := mountinfo.Read()
	if err != nil {
		return err
	}
	have := map[string]bool{}
	for _, m := range ms {
		switch m.FSType {
		case "cgroup2":
			b, _ := os.ReadFile(filepath.Join(m.Point, "cgroup.controllers"))
			for _, c := range strings.Fields(string(b)) {
				have[c] = true
			}
		case "cgroup":
			for _, c := range strings.Split(m.Super, ",") {
				have[c] = true
			}
		}
	}
	if !have["cpu"] || !have["memory"] {
		return errors.New("no cgroup cpu and memory controllers are mounted")
	}
	return nil
}

// cgroupDirs returns the directories of cgroup path in every mounted
// hierarchy where it exists (one with v2, one per controller with v1).
func cgroupDirs(path string) ([]string, error) {
	ms, err := mountinfo.Read()
	if err != nil {
		return nil, err
	}
	var dirs []string
	for _, m := range ms {
		if m.FSType != "cgroup" && m.FSType != "cgroup2" {
			continue
		}
		d := filepath.Join(m.Point, path)
		if _, err := os.Stat(d); err == nil && !slices.Contains(dirs, d) {
			dirs = append(dirs, d)
		}
	}
	return dirs, nil
}

// removeCgroupParents removes the node's cgroup directories above its
// containers' when they are empty (rmdir fails on a non-empty cgroup).
func removeCgroupParents(parents ...string) {
	for _, p := range parents {
		dirs, _ := cgroupDirs(p)
		for _, d := range dirs {
			os.Remove(d)
		}
	}
}

// noFileLimit is the containers' RLIMIT_NOFILE: 65536, or the agent's own
// hard limit if lower (raising it would need CAP_SYS_RESOURCE).
func noFileLimit() uint64 {
	var rl unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &rl); err != nil {
		return 1024
	}
	return min(rl.Max, 65536)
}
