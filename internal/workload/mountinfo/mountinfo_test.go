package mountinfo

import (
	"strings"
	"testing"
)

const sample = `22 1 254:0 / / rw,relatime - ext4 /dev/vda rw
31 22 0:26 / /sys/fs/cgroup/memory rw,relatime shared:9 - cgroup cgroup rw,memory
40 22 7:0 / /data/vol\040one/mnt rw,nosuid,nodev - ext4 /dev/loop0 rw
41 22 7:1 / /data/vol\040one/mnt rw - ext4 /dev/loop1 rw
`

func TestParse(t *testing.T) {
	t.Parallel()
	ms, err := Parse(strings.NewReader(sample))
	if err != nil {
		t.Fatal(err)
	}
	if len(ms) != 4 {
		t.Fatalf("%d mounts, want 4", len(ms))
	}
	cg := ms[1]
	if cg.Point != "/sys/fs/cgroup/memory" || cg.FSType != "cgroup" || cg.Super != "rw,memory" {
		t.Errorf("cgroup mount parsed as %+v (optional fields must be skipped)", cg)
	}
	if ms[2].Point != "/data/vol one/mnt" || ms[2].Source != "/dev/loop0" || ms[2].Options != "rw,nosuid,nodev" {
		t.Errorf("escaped mount point parsed as %+v", ms[2])
	}
}

func TestParseRejectsGarbage(t *testing.T) {
	t.Parallel()
	if _, err := Parse(strings.NewReader("1 2 3\n")); err == nil {
		t.Fatal("a short line parsed")
	}
}

func TestUnescape(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{`/a\040b`: "/a b", `/plain`: "/plain", `/t\011x\134`: "/t\tx\\", `/short\04`: `/short\04`, `/bad\999`: `/bad\999`} {
		if got := unescape(in); got != want {
			t.Errorf("unescape(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReadSelf(t *testing.T) {
	t.Parallel()
	ms, err := Read()
	if err != nil {
		t.Skipf("no /proc/self/mountinfo: %v", err)
	}
	if _, ok, err := At("/"); err != nil || !ok || len(ms) == 0 {
		t.Fatalf("At(/) = %v, %v; %d mounts", ok, err, len(ms))
	}
}
