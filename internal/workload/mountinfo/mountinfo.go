// Package mountinfo reads the calling process's mount table,
// /proc/self/mountinfo (proc(5)), which workload managers consult to know
// what is mounted where: a volume's filesystem, the cgroup hierarchies.
package mountinfo

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
)

// Mount is one line of the table.
type Mount struct {
	Point   string // where it is mounted
	Root    string // the mounted subtree of the filesystem
	FSType  string
	Source  string
	Options string // per-mount options
	Super   string // per-superblock options (for cgroup v1: the controllers)
}

// Read returns the current mount table, in mount order.
func Read() ([]Mount, error) {
	f, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return Parse(f)
}

// Parse reads a table in mountinfo format. Lines it cannot parse are an
// error: the kernel writes this format, so a surprise means a bug.
func Parse(r io.Reader) ([]Mount, error) {
	var ms []Mount
	s := bufio.NewScanner(r)
	s.Buffer(make([]byte, 64<<10), 1<<20)
	for line := 1; s.Scan(); line++ {
		// id parent maj:min root point options [optional...] - fstype source super
		f := strings.Fields(s.Text())
		sep := -1
		for i := 6; i < len(f); i++ {
			if f[i] == "-" {
				sep = i
				break
			}
		}
		if sep < 0 || sep+3 > len(f) {
			return nil, fmt.Errorf("mountinfo line %d: %q: not in mountinfo format", line, s.Text())
		}
		m := Mount{Root: unescape(f[3]), Point: unescape(f[4]), Options: f[5], FSType: f[sep+1], Source: unescape(f[sep+2])}
		if sep+3 < len(f) {
			m.Super = f[sep+3]
		}
		ms = append(ms, m)
	}
	return ms, s.Err()
}

// At returns the topmost mount at point, if any.
func At(point string) (Mount, bool, error) {
	ms, err := Read()
	if err != nil {
		return Mount{}, false, err
	}
	var found Mount
	ok := false
	for _, m := range ms {
		if m.Point == point {
			found, ok = m, true
		}
	}
	return found, ok, nil
}

// unescape undoes the kernel's octal escapes (\040 for a space).
func unescape(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			if c, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(c))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
