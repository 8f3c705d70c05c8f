package fusefs

import (
	"bytes"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"
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
