package zdb

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// fill writes n keys (some overwritten, some deleted) and returns what the
// namespace must hold.
func fill(t *testing.T, ns *Namespace, n int) map[string]string {
	t.Helper()
	want := map[string]string{}
	for i := range n {
		k, v := fmt.Sprintf("key-%04d", i), strings.Repeat(fmt.Sprint(i), 1+i%97)
		mustSet(t, ns, k, v)
		want[k] = v
	}
	for i := 0; i < n; i += 3 {
		k, v := fmt.Sprintf("key-%04d", i), fmt.Sprintf("second value %d", i)
		mustSet(t, ns, k, v)
		want[k] = v
	}
	for i := 1; i < n; i += 5 {
		k := fmt.Sprintf("key-%04d", i)
		if err := ns.Delete([]byte(k)); err != nil {
			t.Fatal(err)
		}
		delete(want, k)
	}
	return want
}

func TestRestartKeepsEverything(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, _ := openStore(t, dir, func(o *Options) { o.MaxFileSize = 4096 })
	ns := mustNS(t, s, "data")
	want := fill(t, ns, 300)
	if len(dataFiles(t, dir, "data")) < 3 {
		t.Fatalf("expected rotation into several data files, got %v", dataFiles(t, dir, "data"))
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s2, lb := openStore(t, dir, func(o *Options) { o.MaxFileSize = 4096 })
	wantState(t, mustNS(t, s2, "data"), want)
	if strings.Contains(lb.String(), "rebuilding") {
		t.Fatalf("a clean restart should use the index file:\n%s", lb)
	}
}

func TestIndexRebuiltFromDataFiles(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name   string
		damage func(t *testing.T, index string)
	}{
		{"deleted", func(t *testing.T, index string) { os.Remove(index) }},
		{"bit flipped", func(t *testing.T, index string) { flipByte(t, index, 60) }},
		{"truncated", func(t *testing.T, index string) { os.Truncate(index, fileSize(t, index)/2) }},
		{"garbage", func(t *testing.T, index string) { os.WriteFile(index, []byte("not an index"), 0o600) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s, _ := openStore(t, dir, func(o *Options) { o.MaxFileSize = 4096 })
			want := fill(t, mustNS(t, s, "data"), 200)
			s.Close()
			tc.damage(t, filepath.Join(dir, "data", indexFileName))
			s2, lb := openStore(t, dir, nil)
			wantState(t, mustNS(t, s2, "data"), want)
			if !strings.Contains(lb.String(), "index from data files") {
				t.Fatalf("no rebuild reported:\n%s", lb)
			}
		})
	}
}

// An index file older than the data files (say, restored from a backup) is
// still consistent with them: the loader uses it and replays the rest.
func TestStaleIndexFileIsCaughtUp(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, _ := openStore(t, dir, nil)
	ns := mustNS(t, s, "data")
	want := fill(t, ns, 50)
	s.Close()
	old, err := os.ReadFile(filepath.Join(dir, "data", indexFileName))
	if err != nil {
		t.Fatal(err)
	}
	s, _ = openStore(t, dir, nil)
	ns = mustNS(t, s, "data")
	for i := range 50 {
		k := fmt.Sprintf("key-%04d", i)
		if i%2 == 0 {
			mustSet(t, ns, k, "later")
			want[k] = "later"
		} else if _, ok := want[k]; ok {
			ns.Delete([]byte(k))
			delete(want, k)
		}
	}
	s.Close()
	os.WriteFile(filepath.Join(dir, "data", indexFileName), old, 0o600)
	s, _ = openStore(t, dir, nil)
	wantState(t, mustNS(t, s, "data"), want)
}

func TestTornTailTruncatedAndReported(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name    string
		damage  func(t *testing.T, path string, lastOff int64)
		lostKey bool
	}{
		{"garbage appended", func(t *testing.T, path string, _ int64) {
			appendBytes(t, path, []byte("ZR\x01garbage from a write that never finished"))
		}, false},
		{"last record cut in half", func(t *testing.T, path string, lastOff int64) {
			os.Truncate(path, lastOff+(fileSize(t, path)-lastOff)/2)
		}, true},
		{"zeros after the end", func(t *testing.T, path string, _ int64) {
			appendBytes(t, path, make([]byte, 4096))
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s, _ := openStore(t, dir, nil)
			ns := mustNS(t, s, "data")
			want := map[string]string{}
			for i := range 20 {
				k := fmt.Sprint("k", i)
				want[k] = strings.Repeat("v", 100+i)
				mustSet(t, ns, k, want[k])
			}
			lastOff := ns.idx.keys["k19"].off
			s.abandon()
			path := dataFiles(t, dir, "data")[0]
			tc.damage(t, path, lastOff)
			if tc.lostKey {
				delete(want, "k19")
			}
			s2, lb := openStore(t, dir, nil)
			ns2 := mustNS(t, s2, "data")
			wantState(t, ns2, want)
			log := lb.String()
			if !strings.Contains(log, "torn tail truncated") || !strings.Contains(log, "bytes_dropped=") {
				t.Fatalf("torn tail not reported:\n%s", log)
			}
			mustSet(t, ns2, "after", "the restart")
			want["after"] = "the restart"
			s2.Close()
			s3, lb3 := openStore(t, dir, nil)
			wantState(t, mustNS(t, s3, "data"), want)
			if strings.Contains(lb3.String(), "torn") {
				t.Fatalf("torn tail reported again after it was cut:\n%s", lb3)
			}
		})
	}
}

func TestCorruptRecordNeverServed(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name      string
		dropIndex bool
		at        func(e entry) int64 // byte to flip in the record of "k5"
	}{
		{"value bit rot, index present", false, func(e entry) int64 { return e.off + recordHeaderSize + 2 + 10 }},
		{"value bit rot, index rebuilt", true, func(e entry) int64 { return e.off + recordHeaderSize + 2 + 10 }},
		{"length field damaged, index rebuilt", true, func(e entry) int64 { return e.off + 9 }},
		{"magic damaged, index rebuilt", true, func(e entry) int64 { return e.off }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s, _ := openStore(t, dir, nil)
			ns := mustNS(t, s, "data")
			want := map[string]string{}
			for i := range 10 {
				k := fmt.Sprint("k", i)
				want[k] = strings.Repeat(string(rune('a'+i)), 200)
				mustSet(t, ns, k, want[k])
			}
			victim := ns.idx.keys["k5"]
			s.Close()
			flipByte(t, dataFiles(t, dir, "data")[0], tc.at(victim))
			if tc.dropIndex {
				os.Remove(filepath.Join(dir, "data", indexFileName))
			}
			s2, lb := openStore(t, dir, nil)
			ns2 := mustNS(t, s2, "data")
			v, found, err := ns2.Get([]byte("k5"))
			if tc.dropIndex {
				if found || err != nil {
					t.Fatalf("damaged record indexed: found %v, %q, %v", found, v, err)
				}
				if !strings.Contains(lb.String(), "damaged record skipped") {
					t.Fatalf("damage not reported:\n%s", lb)
				}
			} else {
				if !errors.Is(err, ErrCorrupt) || v != nil {
					t.Fatalf("get damaged record = %q, %v; want ErrCorrupt", v, err)
				}
				if ok, found, _ := ns2.Check([]byte("k5")); ok || !found {
					t.Fatalf("CHECK of damaged record = %v, found %v", ok, found)
				}
			}
			delete(want, "k5")
			for k, v := range want {
				got, _, err := ns2.Get([]byte(k))
				if err != nil || string(got) != v {
					t.Fatalf("%s: %q, %v", k, got, err)
				}
			}
			mustSet(t, ns2, "k10", "still writable")
		})
	}
}

func TestSeqMode(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, _ := openStore(t, dir, nil)
	ns := mustNS(t, s, "seq")
	if err := ns.Configure("mode", "seq"); err != nil {
		t.Fatal(err)
	}
	for i := range 5 {
		k := mustSet(t, ns, "", fmt.Sprint("value ", i))
		if !bytes.Equal(k, binary.LittleEndian.AppendUint64(nil, uint64(i))) {
			t.Fatalf("key %d = %x", i, k)
		}
	}
	k3 := binary.LittleEndian.AppendUint64(nil, 3)
	if _, _, err := ns.Set(k3, []byte("updated")); err != nil {
		t.Fatalf("update existing seq key: %v", err)
	}
	if _, _, err := ns.Set(binary.LittleEndian.AppendUint64(nil, 99), []byte("x")); !errors.Is(err, ErrSeqUpdateOnly) {
		t.Fatalf("set unknown seq key: %v", err)
	}
	if err := ns.Configure("mode", "user"); !errors.Is(err, ErrModeChange) {
		t.Fatalf("mode change of a used namespace: %v", err)
	}
	// Delete the newest keys, compact them away and lose the index: ids
	// must still never be reused.
	ns.Delete(binary.LittleEndian.AppendUint64(nil, 4))
	ns.Delete(k3)
	if _, err := ns.Compact(); err != nil {
		t.Fatal(err)
	}
	s.Close()
	os.Remove(filepath.Join(dir, "seq", indexFileName))
	s, _ = openStore(t, dir, nil)
	ns = mustNS(t, s, "seq")
	k := mustSet(t, ns, "", "after restart")
	// Ids 0–4 were appended and the overwrite of 3 consumed 5, as in 0-db.
	if got := binary.LittleEndian.Uint64(k); got != 6 {
		t.Fatalf("next seq id after restart = %d, want 6", got)
	}
	v, _, _ := ns.Get(binary.LittleEndian.AppendUint64(nil, 2))
	eq(t, "value 2", string(v), "value 2")
}

func TestStoreOptionsAndLock(t *testing.T) {
	t.Parallel()
	if _, err := Open(Options{}); !errors.Is(err, ErrBadOptions) {
		t.Fatalf("no dir: %v", err)
	}
	if _, err := Open(Options{Dir: t.TempDir(), Sync: "sometimes"}); !errors.Is(err, ErrBadOptions) {
		t.Fatalf("bad sync policy: %v", err)
	}
	dir := t.TempDir()
	openStore(t, dir, nil)
	if _, err := Open(Options{Dir: dir}); !errors.Is(err, ErrDirInUse) {
		t.Fatalf("second store on one dir: %v", err)
	}
}

func TestSyncAlwaysAndLimits(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, _ := openStore(t, dir, func(o *Options) { o.Sync = SyncAlways })
	ns := mustNS(t, s, DefaultNamespace)
	big := bytes.Repeat([]byte{7}, MaxValueSize)
	if _, _, err := ns.Set([]byte("big"), big); err != nil {
		t.Fatal(err)
	}
	if _, _, err := ns.Set([]byte("bigger"), append(big, 1)); !errors.Is(err, ErrValueTooLarge) {
		t.Fatalf("value over 8 MiB: %v", err)
	}
	if _, _, err := ns.Set(bytes.Repeat([]byte("k"), 256), nil); !errors.Is(err, ErrKeyTooLarge) {
		t.Fatalf("256-byte key: %v", err)
	}
	if _, _, err := ns.Set(bytes.Repeat([]byte("k"), 255), nil); err != nil {
		t.Fatalf("255-byte key: %v", err)
	}
	if _, changed, _ := ns.Set([]byte("big"), big); changed {
		t.Fatal("setting the same value again wrote a record")
	}
	s.abandon() // no Close: SyncAlways already made everything durable
	s2, _ := openStore(t, dir, nil)
	v, _, err := mustNS(t, s2, DefaultNamespace).Get([]byte("big"))
	if err != nil || !bytes.Equal(v, big) {
		t.Fatalf("8 MiB value after crash: %d bytes, %v", len(v), err)
	}
}

func flipByte(t *testing.T, path string, off int64) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b := make([]byte, 1)
	if _, err := f.ReadAt(b, off); err != nil {
		t.Fatal(err)
	}
	b[0] ^= 0x40
	if _, err := f.WriteAt(b, off); err != nil {
		t.Fatal(err)
	}
}

func appendBytes(t *testing.T, path string, b []byte) {
	t.Helper()
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write(b); err != nil {
		t.Fatal(err)
	}
}
