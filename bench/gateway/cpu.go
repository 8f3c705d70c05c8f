package main

import (
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// proc is a process the bench started; children adds its child
// processes' CPU (nginx's workers).
type proc struct {
	pid      int
	children bool
	stop     func()
}

// clockTick is USER_HZ, the unit of /proc's CPU times (100 on Linux).
const clockTick = 100

// cpuTimes reads each process's user+system CPU time, plus "all": the
// machine's busy time (everything but idle and iowait) from /proc/stat.
func cpuTimes(procs map[string]proc) map[string]time.Duration {
	out := map[string]time.Duration{}
	for name, p := range procs {
		pids := []int{p.pid}
		if p.children {
			pids = append(pids, childrenOf(p.pid)...)
		}
		for _, pid := range pids {
			out[name] += procCPU(pid)
		}
	}
	out["all"] = machineBusy()
	return out
}

func ticks(n uint64) time.Duration { return time.Duration(n) * time.Second / clockTick }

// statFields returns the fields of /proc/PID/stat after the command name.
func statFields(pid int) []string {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

// procCPU is utime+stime (fields 14 and 15 of stat; 12 and 13 after the
// name and state).
func procCPU(pid int) time.Duration {
	f := statFields(pid)
	if len(f) < 13 {
		return 0
	}
	u, _ := strconv.ParseUint(f[11], 10, 64)
	s, _ := strconv.ParseUint(f[12], 10, 64)
	return ticks(u + s)
}

func childrenOf(parent int) []int {
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	var out []int
	for _, d := range dirs {
		pid, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if f := statFields(pid); len(f) > 1 && f[1] == strconv.Itoa(parent) {
			out = append(out, pid)
		}
	}
	return out
}

// machineBusy sums the first line of /proc/stat except idle and iowait.
func machineBusy() time.Duration {
	b, err := os.ReadFile("/proc/stat")
	if err != nil {
		return 0
	}
	line, _, _ := strings.Cut(string(b), "\n")
	f := strings.Fields(line)
	var busy uint64
	for i, v := range f[1:] {
		if i == 3 || i == 4 || i >= 8 { // idle, iowait; guest time is already in user
			continue
		}
		n, _ := strconv.ParseUint(v, 10, 64)
		busy += n
	}
	return ticks(busy)
}

func sortedKeys(m map[string]float64) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
