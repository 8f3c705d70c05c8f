package catalog

import (
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/storage"
	"github.com/zerogrid/zerogrid/internal/storage/dir"
)

// TestStoreWrittenBeforeKeyBindingStaysReadable opens testdata/v1store, a
// store of three directory backends (2+1, 64 KiB segments) that the code
// before key binding wrote (shard format version 1: catalog, root and one
// file, hello.txt; the mnemonic is in mnemonic.txt). It reads the file,
// then writes another one, which gets version 2 shards, and reads both
// again from a fresh open.
func TestStoreWrittenBeforeKeyBindingStaysReadable(t *testing.T) {
	t.Parallel()
	src := filepath.Join("testdata", "v1store")
	m, err := os.ReadFile(filepath.Join(src, "mnemonic.txt"))
	if err != nil {
		t.Fatal(err)
	}
	sec, err := StorageSecret(strings.TrimSpace(string(m)))
	if err != nil {
		t.Fatal(err)
	}
	want, err := os.ReadFile(filepath.Join(src, "hello.txt"))
	if err != nil {
		t.Fatal(err)
	}
	root := t.TempDir()
	if err := os.CopyFS(root, os.DirFS(src)); err != nil {
		t.Fatal(err)
	}
	open := func() *Store {
		t.Helper()
		var bs []storage.Backend
		for i := range 3 {
			b, err := dir.Open(fmt.Sprintf("b%d", i), fmt.Sprintf("rack%d", i), filepath.Join(root, fmt.Sprintf("b%d", i)), nil)
			if err != nil {
				t.Fatal(err)
			}
			bs = append(bs, b)
		}
		s, err := Open(context.Background(), Options{Params: storage.Params{K: 2, M: 1, SegmentSize: 64 << 10}, Backends: bs}, sec)
		if err != nil {
			t.Fatalf("open the version 1 store: %v", err)
		}
		t.Cleanup(s.Close)
		return s
	}
	get := func(s *Store, name string) []byte {
		t.Helper()
		var buf bytes.Buffer
		if _, _, err := s.Get(context.Background(), name, &buf); err != nil {
			t.Fatalf("get %s: %v", name, err)
		}
		return buf.Bytes()
	}
	s := open()
	if !bytes.Equal(get(s, "hello.txt"), want) {
		t.Fatal("hello.txt from the version 1 store differs")
	}
	if versions(t, root)[1] == 0 || versions(t, root)[2] != 0 {
		t.Fatalf("fixture should hold only version 1 shards: %v", versions(t, root))
	}
	fresh := randBytes(t, 100_000)
	if _, err := s.Put(context.Background(), "new.bin", bytes.NewReader(fresh), 0o644, time.Unix(1, 0)); err != nil {
		t.Fatal(err)
	}
	if versions(t, root)[2] == 0 {
		t.Fatal("a new write in an old store did not use shard format version 2")
	}
	s2 := open()
	if !bytes.Equal(get(s2, "hello.txt"), want) || !bytes.Equal(get(s2, "new.bin"), fresh) {
		t.Fatal("files differ after a write with the new format")
	}
}

// versions counts the shards under root by format version.
func versions(t *testing.T, root string) map[int]int {
	t.Helper()
	out := map[int]int{}
	err := filepath.WalkDir(root, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasPrefix(d.Name(), "shard-") {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		h, _, _, err := storage.ParseShardHeader(b)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		out[h.Version]++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
