package grid

import (
	"bytes"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// killUnder ends the processes whose command line names a path under dir
// (a node's zdb server and qsfs mounts, which outlive its agent): SIGTERM,
// then SIGKILL after 5 s.
func killUnder(dir string) {
	var pids []int
	procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range procs {
		b, _ := os.ReadFile(p)
		if !bytes.Contains(b, []byte(dir+"/")) {
			continue
		}
		if pid, err := strconv.Atoi(filepath.Base(filepath.Dir(p))); err == nil && pid != os.Getpid() {
			pids = append(pids, pid)
			syscall.Kill(pid, syscall.SIGTERM)
		}
	}
	for deadline := time.Now().Add(5 * time.Second); len(pids) > 0 && time.Now().Before(deadline); {
		time.Sleep(50 * time.Millisecond)
		left := pids[:0]
		for _, pid := range pids {
			if syscall.Kill(pid, 0) == nil {
				left = append(left, pid)
			}
		}
		pids = left
	}
	for _, pid := range pids {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}
