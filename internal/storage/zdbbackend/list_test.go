package zdbbackend

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/zerogrid/zerogrid/internal/storage"
)

// TestListManyBatches lists more keys than one SCAN batch (256) holds,
// and rewrites keys during the walk: SCAN returns those again at their new
// place, List must report them once.
func TestListManyBatches(t *testing.T) {
	t.Parallel()
	s := startZDB(t)
	pw := randomHex(t)
	b := newBackend(t, s.addr, s.namespace(pw, ""), pw, 0)
	ctx := context.Background()
	const n = 600
	for i := range n {
		if err := b.Put(ctx, fmt.Sprintf("shard-%04d", i), []byte{byte(i)}); err != nil {
			t.Fatal(err)
		}
		if i%3 == 0 {
			if err := b.Put(ctx, fmt.Sprintf("meta-%04d", i), nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	got := map[string]int{}
	err := b.List(ctx, "shard-", func(i storage.Info) error {
		got[i.Name]++
		if i.Size != 1 {
			t.Errorf("%s: size %d, want 1", i.Name, i.Size)
		}
		if len(got) <= 10 { // rewrite: the key moves to the end of the scan
			return b.Put(ctx, i.Name, []byte{0xff})
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != n {
		t.Fatalf("List(shard-) found %d names, want %d", len(got), n)
	}
	for name, c := range got {
		if c != 1 {
			t.Fatalf("List reported %s %d times", name, c)
		}
	}
}

func TestParseScanRejectsMalformedReplies(t *testing.T) {
	t.Parallel()
	good := []any{"\x01cursor", []any{[]any{"k", int64(3), int64(1700000000)}}}
	if cur, batch, err := parseScan(good); err != nil || cur != "\x01cursor" || len(batch) != 1 || batch[0] != (storage.Info{Name: "k", Size: 3}) {
		t.Fatalf("parseScan(good) = %q, %v, %v", cur, batch, err)
	}
	bad := map[string][]any{
		"empty":          {},
		"one element":    {"c"},
		"empty cursor":   {"", []any{}},
		"cursor not str": {int64(1), []any{}},
		"list not list":  {"c", "x"},
		"entry not list": {"c", []any{"k"}},
		"short entry":    {"c", []any{[]any{"k"}}},
		"key not str":    {"c", []any{[]any{int64(1), int64(1)}}},
		"size not int":   {"c", []any{[]any{"k", "1"}}},
		"negative size":  {"c", []any{[]any{"k", int64(-1)}}},
	}
	for name, reply := range bad {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if _, _, err := parseScan(reply); !errors.Is(err, errScanReply) {
				t.Fatalf("parseScan(%v): %v, want errScanReply", reply, err)
			}
		})
	}
}
