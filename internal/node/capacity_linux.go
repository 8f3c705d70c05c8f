package node

import (
	"bufio"
	"fmt"
	"os"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/zerogrid/zerogrid/internal/spec"
)

// MeasureCapacity reports this machine's CPUs, memory and the size of the
// filesystem holding dataDir, less reserve for the node itself.
func MeasureCapacity(dataDir string, reserve spec.Resources) (spec.Resources, error) {
	mem, err := memTotal()
	if err != nil {
		return spec.Resources{}, err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(dataDir, &st); err != nil {
		return spec.Resources{}, fmt.Errorf("statfs %s: %w", dataDir, err)
	}
	total := spec.Resources{CPU: uint64(runtime.NumCPU()) * 1000, Memory: mem, Disk: st.Blocks * uint64(st.Bsize)}
	return total.Sub(reserve), nil
}

func memTotal() (uint64, error) {
	f, err := os.Open("/proc/meminfo")
	if err != nil {
		return 0, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseUint(fields[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, fmt.Errorf("/proc/meminfo has no MemTotal")
}
