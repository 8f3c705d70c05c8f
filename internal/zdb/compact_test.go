package zdb

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func diskUse(t *testing.T, dir, ns string) int64 {
	var n int64
	for _, p := range dataFiles(t, dir, ns) {
		n += fileSize(t, p)
	}
	return n
}

func TestCompactionDropsDeadRecords(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	small := func(o *Options) { o.MaxFileSize = 4096 }
	s, _ := openStore(t, dir, small)
	ns := mustNS(t, s, "data")
	want := fill(t, ns, 300)
	before := diskUse(t, dir, "data")

	st, err := ns.Compact()
	if err != nil {
		t.Fatal(err)
	}
	after := diskUse(t, dir, "data")
	if st.Files == 0 || st.Reclaimed <= 0 || after >= before {
		t.Fatalf("compaction: %+v, disk %d → %d bytes", st, before, after)
	}
	if shrank := before - after; shrank != st.Reclaimed-fileHeaderSize { // the sealed active file's successor
		t.Fatalf("reported %d bytes reclaimed, disk shrank by %d", st.Reclaimed, shrank)
	}
	wantState(t, ns, want)
	in, _ := ns.Info()
	if in.Reclaimable != 0 {
		t.Fatalf("after a full compaction %d bytes are still reclaimable", in.Reclaimable)
	}
	if st2, err := ns.Compact(); err != nil || st2.Files != 0 {
		t.Fatalf("second compaction: %+v, %v", st2, err)
	}
	s.Close()

	// Deleted keys stay deleted, with the index file and without it.
	s, _ = openStore(t, dir, small)
	wantState(t, mustNS(t, s, "data"), want)
	s.Close()
	os.Remove(filepath.Join(dir, "data", indexFileName))
	s, _ = openStore(t, dir, small)
	wantState(t, mustNS(t, s, "data"), want)
}

// A scan that runs across a compaction sees every key exactly once: cursors
// are LSNs, which compaction keeps.
func TestScanAcrossCompaction(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, t.TempDir(), func(o *Options) { o.MaxFileSize = 4096 })
	ns := mustNS(t, s, "data")
	want := fill(t, ns, 200)
	seen := map[string]int{}
	first, _ := ns.Scan(0, 40)
	for _, it := range first {
		seen[string(it.Key)]++
	}
	if _, err := ns.Compact(); err != nil {
		t.Fatal(err)
	}
	after := first[len(first)-1].LSN
	for {
		items, _ := ns.Scan(after, 33)
		if len(items) == 0 {
			break
		}
		for _, it := range items {
			seen[string(it.Key)]++
		}
		after = items[len(items)-1].LSN
	}
	if len(seen) != len(want) {
		t.Fatalf("scan saw %d keys, want %d", len(seen), len(want))
	}
	for k, n := range seen {
		if n != 1 || want[k] == "" {
			t.Fatalf("key %q seen %d times (exists: %v)", k, n, want[k] != "")
		}
	}
}

// A crash at any step of a compaction loses nothing and resurrects nothing:
// the failpoint aborts compaction at its nth hit, the store is abandoned
// like a killed process, and the next open must find exactly the data.
func TestCompactionCrashSafe(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		point string
		nth   int32
	}{
		{"compact-written", 1}, {"compact-written", 4},
		{"compact-renamed", 1}, {"compact-renamed", 2}, {"compact-renamed", 5}, {"compact-renamed", 9},
	} {
		t.Run(fmt.Sprintf("%s#%d", tc.point, tc.nth), func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			var hits atomic.Int32
			crash := errors.New("simulated crash")
			s, _ := openStore(t, dir, func(o *Options) {
				o.MaxFileSize = 4096
				o.failpoints = func(name string) error {
					if name == tc.point && hits.Add(1) == tc.nth {
						return crash
					}
					return nil
				}
			})
			ns := mustNS(t, s, "data")
			want := fill(t, ns, 300)
			if _, err := ns.Compact(); !errors.Is(err, crash) {
				t.Fatalf("compaction did not reach the failpoint: %v", err)
			}
			s.abandon()

			s2, _ := openStore(t, dir, func(o *Options) { o.MaxFileSize = 4096 })
			ns2 := mustNS(t, s2, "data")
			wantState(t, ns2, want)
			if _, err := ns2.Compact(); err != nil {
				t.Fatal(err)
			}
			wantState(t, ns2, want)
			s2.Close()
			os.Remove(filepath.Join(dir, "data", indexFileName))
			s3, _ := openStore(t, dir, nil)
			wantState(t, mustNS(t, s3, "data"), want)
			if left, _ := filepath.Glob(filepath.Join(dir, "data", ".*.tmp-*")); len(left) != 0 {
				t.Fatalf("leftover temporary files: %v", left)
			}
		})
	}
}

func TestBackgroundCompaction(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, lb := openStore(t, dir, func(o *Options) {
		o.MaxFileSize = 4096
		o.CompactInterval = 20 * time.Millisecond
		o.CompactRatio = 0.5
	})
	ns := mustNS(t, s, "data")
	want := map[string]string{}
	for round := range 4 {
		for i := range 100 {
			k := fmt.Sprint("k", i)
			want[k] = fmt.Sprintf("round %d %s", round, strings.Repeat("x", i))
			mustSet(t, ns, k, want[k])
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for !strings.Contains(lb.String(), "compacted") {
		if time.Now().After(deadline) {
			t.Fatalf("no background compaction within 10s:\n%s", lb)
		}
		time.Sleep(20 * time.Millisecond)
	}
	wantState(t, ns, want)
}
