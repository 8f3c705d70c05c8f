package fusefs

import (
	"bytes"
	"errors"
	"io"
	mrand "math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/storage"
	"github.com/zerogrid/zerogrid/internal/storage/catalog"
)

// within runs fn and fails the test if it has not returned after d: a
// hang shows as a failure naming what hung, not as a test timeout.
func within(t *testing.T, d time.Duration, what string, fn func()) {
	t.Helper()
	done := make(chan struct{})
	go func() { defer close(done); fn() }()
	select {
	case <-done:
	case <-time.After(d):
		t.Fatalf("%s did not return within %v", what, d)
	}
}

// TestConcurrentCloseOfStream: two descriptors of a file being streamed,
// closed at the same time, both return and the file is stored.
func TestConcurrentCloseOfStream(t *testing.T) {
	r := newRig(t, 6, 4, 2, 64<<10)
	for round := range 4 {
		data := randBytes(2<<20 + round)
		p := filepath.Join(r.mnt, "streamed")
		f, err := os.Create(p)
		if err != nil {
			t.Fatal(err)
		}
		fd2, err := syscall.Dup(int(f.Fd()))
		if err != nil {
			t.Fatal(err)
		}
		g := os.NewFile(uintptr(fd2), "dup")
		if _, err := f.Write(data); err != nil {
			t.Fatal(err)
		}
		within(t, 20*time.Second, "closing both descriptors at once", func() {
			var wg sync.WaitGroup
			for _, h := range []*os.File{f, g} {
				wg.Go(func() {
					if err := h.Close(); err != nil {
						t.Errorf("close: %v", err)
					}
				})
			}
			wg.Wait()
		})
		if got := get(t, r.fresh(t), "streamed"); !bytes.Equal(got, data) {
			t.Fatalf("round %d: store holds %d bytes, wrote %d", round, len(got), len(data))
		}
	}
}

// shardsLeft counts the shards of e's segments still on the rig's backends.
func (r *rig) shardsLeft(t *testing.T, e catalog.Entry) int {
	t.Helper()
	n := 0
	for _, ref := range e.Segments {
		for _, loc := range ref.Shards {
			for _, d := range r.dirs {
				if _, err := os.Stat(filepath.Join(d, storage.ShardName(ref.ID, loc.Index))); err == nil {
					n++
				}
			}
		}
	}
	return n
}

// putFile stores data as name through the mount's own store and returns
// its entry.
func (r *rig) putFile(t *testing.T, name string, data []byte) catalog.Entry {
	t.Helper()
	res, err := r.st.Put(t.Context(), name, bytes.NewReader(data), 0o644, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	return res.Entry
}

// TestOpenFileSurvivesUnlink: `exec 3< f; rm f; cat <&3` prints the file,
// fstat works on the descriptor, and the segments go once it closes.
func TestOpenFileSurvivesUnlink(t *testing.T) {
	r := newRig(t, 6, 4, 2, 64<<10)
	data := randBytes(1<<20 + 3)
	e := r.putFile(t, "f", data)
	out, err := exec.Command("bash", "-c", `cd "$1" && exec 3< f && rm f && cat <&3`, "sh", r.mnt).Output()
	if err != nil {
		t.Fatalf("exec 3< f; rm f; cat <&3: %v", err)
	}
	if !bytes.Equal(out, data) {
		t.Fatalf("cat of the unlinked file gave %d bytes, want %d", len(out), len(data))
	}
	r.waitShardsGone(t, e)

	e = r.putFile(t, "g", data)
	f, err := os.Open(filepath.Join(r.mnt, "g"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if err := os.Remove(filepath.Join(r.mnt, "g")); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(r.mnt, "g")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("stat of the unlinked name: %v", err)
	}
	fi, err := f.Stat()
	if err != nil || fi.Size() != int64(len(data)) {
		t.Fatalf("fstat of the open, unlinked file: %v, size %d", err, fi.Size())
	}
	if left := r.shardsLeft(t, e); left == 0 {
		t.Fatal("the open file's shards were deleted at unlink")
	}
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read of the open, unlinked file: %v (%d bytes)", err, len(got))
	}
	f.Close()
	r.waitShardsGone(t, e)
}

// waitShardsGone waits for the shards of e to be deleted: the kernel sends
// RELEASE after the last close returned.
func (r *rig) waitShardsGone(t *testing.T, e catalog.Entry) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for r.shardsLeft(t, e) != 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if left := r.shardsLeft(t, e); left != 0 {
		t.Fatalf("%d shards of the removed file left 5 s after its last close", left)
	}
}

// TestOpenFileSurvivesRenameOver: a reader of f keeps reading the old
// content after `mv tmp f`, new opens see the new content.
func TestOpenFileSurvivesRenameOver(t *testing.T) {
	r := newRig(t, 6, 4, 2, 64<<10)
	old := randBytes(2<<20 + 5)
	r.putFile(t, "f", old)
	f, err := os.Open(filepath.Join(r.mnt, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	head := make([]byte, 100<<10)
	if _, err := io.ReadFull(f, head); err != nil {
		t.Fatal(err)
	}
	nw := randBytes(300 << 10)
	if err := writeSync(filepath.Join(r.mnt, "tmp"), nw); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mv", filepath.Join(r.mnt, "tmp"), filepath.Join(r.mnt, "f")).CombinedOutput(); err != nil {
		t.Fatalf("mv tmp f: %v %s", err, out)
	}
	rest, err := io.ReadAll(f)
	if err != nil {
		t.Fatalf("read of the file renamed over: %v", err)
	}
	if !bytes.Equal(append(head, rest...), old) {
		t.Fatalf("reader of the replaced file got %d bytes, not the old content", len(head)+len(rest))
	}
	if fi, err := f.Stat(); err != nil || fi.Size() != int64(len(old)) {
		t.Fatalf("fstat of the replaced file: %v", err)
	}
	got, err := os.ReadFile(filepath.Join(r.mnt, "f"))
	if err != nil || !bytes.Equal(got, nw) {
		t.Fatalf("new open of f: %v, %d bytes", err, len(got))
	}
	if got := get(t, r.fresh(t), "f"); !bytes.Equal(got, nw) {
		t.Fatal("store holds the wrong f")
	}
}

// TestOtherWritersVisible: a put by another Store (another process, as
// `zgrid store put` is) shows in the running mount without the mount
// writing anything, and so does its removal.
func TestOtherWritersVisible(t *testing.T) {
	r := newRig(t, 6, 4, 2, 64<<10)
	other := r.fresh(t)
	data := randBytes(10 << 10)
	if _, err := other.Put(t.Context(), "from-elsewhere", bytes.NewReader(data), 0o644, time.Now()); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(r.mnt, "from-elsewhere")
	deadline := time.Now().Add(15 * time.Second)
	for {
		got, err := os.ReadFile(p)
		if err == nil && bytes.Equal(got, data) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("another writer's put not visible in the mount after 15 s: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err := other.Remove(t.Context(), "from-elsewhere"); err != nil {
		t.Fatal(err)
	}
	for {
		_, err := os.Stat(p)
		if errors.Is(err, os.ErrNotExist) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("another writer's remove not visible in the mount: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestRandomReads: small reads at random offsets (served from single
// frames) and a sequential read (whole segments) agree with the file, and
// a corrupt shard block is read around.
func TestRandomReads(t *testing.T) {
	r := newRig(t, 6, 4, 2, 1<<20)
	data := randBytes(3<<20 + 12345)
	e := r.putFile(t, "f", data)
	f, err := os.Open(filepath.Join(r.mnt, "f"))
	if err != nil {
		t.Fatal(err)
	}
	defer func() { f.Close() }() // whichever f is open last
	rng := mrand.New(mrand.NewPCG(1, 2))
	check := func(n int) {
		t.Helper()
		for range n {
			size := 1 + rng.IntN(10000)
			off := rng.Int64N(int64(len(data)))
			buf := make([]byte, size)
			k, err := f.ReadAt(buf, off)
			if err != nil && !errors.Is(err, io.EOF) {
				t.Fatalf("pread %d at %d: %v", size, off, err)
			}
			if !bytes.Equal(buf[:k], data[off:min(off+int64(size), int64(len(data)))]) {
				t.Fatalf("pread %d at %d: wrong bytes", size, off)
			}
		}
	}
	check(300)
	// Flip a byte in the last block of data shard 0 of the second
	// segment: reads there fall back to reading around it.
	ref := e.Segments[1]
	for _, d := range r.dirs {
		p := filepath.Join(d, storage.ShardName(ref.ID, 0))
		if b, err := os.ReadFile(p); err == nil {
			b[len(b)-1] ^= 0xff
			os.WriteFile(p, b, 0o600)
		}
	}
	f.Close()
	if f, err = os.Open(filepath.Join(r.mnt, "f")); err != nil {
		t.Fatal(err)
	}
	check(300)
	got, err := io.ReadAll(f)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("sequential read: %v", err)
	}
}
