package catalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/storage"
)

// TestConcurrentWriters: two Store values on the same backends (as two
// processes would be) put different files at the same time, many rounds;
// every file of both is in the final catalog, and a same-name race keeps
// one of the two contents whole.
func TestConcurrentWriters(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestStore(t, 5, 2, 2)
	sec := secret(t)
	bs, _ := ts.backends(t)
	if _, err := Init(ctx, ts.opts(bs), sec); err != nil {
		t.Fatal(err)
	}
	const rounds = 6
	writers := make([]*Store, 2)
	for i := range writers {
		bs, _ := ts.backends(t)
		s, err := Open(ctx, ts.opts(bs), sec)
		if err != nil {
			t.Fatal(err)
		}
		writers[i] = s
	}
	contents := map[string][]byte{}
	var mu sync.Mutex
	var wg sync.WaitGroup
	errs := make(chan error, 2*rounds+2)
	for w, s := range writers {
		wg.Go(func() {
			for r := range rounds {
				name := fmt.Sprintf("w%d/f%d", w, r)
				data := randBytes(t, 10<<10+r)
				mu.Lock()
				contents[name] = data
				mu.Unlock()
				if _, err := s.Put(ctx, name, bytes.NewReader(data), 0o644, time.Now()); err != nil {
					errs <- err
				}
			}
			if _, err := s.Put(ctx, "same", bytes.NewReader(bytes.Repeat([]byte{byte('a' + w)}, 5000)), 0o644, time.Now()); err != nil {
				errs <- err
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	bs, _ = ts.backends(t)
	r, err := Open(ctx, ts.opts(bs), sec)
	if err != nil {
		t.Fatal(err)
	}
	for name, want := range contents {
		if got := getBytes(t, r, name); !bytes.Equal(got, want) {
			t.Errorf("%s lost or changed by the concurrent writer", name)
		}
	}
	same := getBytes(t, r, "same")
	if len(same) != 5000 || !(bytes.Count(same, same[:1]) == 5000) {
		t.Fatalf("same-name race left a mixed file")
	}
	if got, want := r.Seq(), uint64(1+2*rounds+2); got != want {
		t.Fatalf("root seq %d after %d commits, want %d (a commit overwrote another's seq)", got, 2*rounds+2, want)
	}
	for _, b := range bs {
		n := 0
		b.List(ctx, lockPrefix, func(storage.Info) error { n++; return nil })
		if n != 0 {
			t.Fatalf("backend %s still holds %d lock objects", b.ID(), n)
		}
	}
}

// TestLockBlocksAndExpires: a live lock of another writer makes update
// wait; once it expires, update proceeds.
func TestLockBlocksAndExpires(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestStore(t, 3, 2, 1)
	sec := secret(t)
	bs, _ := ts.backends(t)
	s, err := Init(ctx, ts.opts(bs), sec)
	if err != nil {
		t.Fatal(err)
	}
	other := lockRecord{writer: [16]byte{1, 2, 3}, expires: time.Now().Add(700 * time.Millisecond)}
	for _, b := range bs {
		if err := b.Put(ctx, lockName(other.writer), encodeLock(s.keys, other)); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	if err := s.Mkdir(ctx, "d", 0o755, time.Now()); err != nil {
		t.Fatal(err)
	}
	if waited := time.Since(start); waited < 600*time.Millisecond {
		t.Fatalf("commit went ahead after %v while another writer's lock was live", waited)
	}
	// A forged lock (wrong key) is ignored.
	forged := encodeLock(&keys{}, lockRecord{writer: [16]byte{9}, expires: time.Now().Add(time.Hour)})
	bs[0].Put(ctx, lockName([16]byte{9}), forged)
	ctx2, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := s.Mkdir(ctx2, "e", 0o755, time.Now()); err != nil {
		t.Fatalf("a forged lock blocked the writer: %v", err)
	}
}

func TestLockEncoding(t *testing.T) {
	t.Parallel()
	k := fuzzKeys(t)
	r := lockRecord{writer: [16]byte{7}, expires: time.Unix(0, 123456789)}
	raw := encodeLock(k, r)
	got, err := decodeLock(k, lockName(r.writer), raw)
	if err != nil || got != r {
		t.Fatalf("round trip: %v %v", got, err)
	}
	if _, err := decodeLock(k, lockName([16]byte{8}), raw); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("lock under another name: %v", err)
	}
	raw[25] ^= 1
	if _, err := decodeLock(k, lockName(r.writer), raw); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("flipped lock: %v", err)
	}
}

func FuzzDecodeLock(f *testing.F) {
	k := fuzzKeys(f)
	w := [16]byte{7}
	f.Add(encodeLock(k, lockRecord{writer: w, expires: time.Unix(1, 0)}))
	f.Add([]byte("ZGLK"))
	f.Fuzz(func(t *testing.T, raw []byte) {
		r, err := decodeLock(k, lockName(w), raw)
		if err == nil && !bytes.Equal(encodeLock(k, r), raw) {
			t.Fatal("accepted a lock that does not re-encode to itself")
		}
	})
}
