package catalog

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"log/slog"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"
)

type logBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestStaleLocalLockTakenOver: a live lease left by a process of this
// machine and user that is gone (a killed mount) is taken over at once; a
// lease of a running process is waited for, and the wait is logged with
// the holder and the time left.
func TestStaleLocalLockTakenOver(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	ts := newTestStore(t, 5, 2, 2)
	sec := secret(t)
	bs, _ := ts.backends(t)
	s, err := Init(ctx, ts.opts(bs), sec)
	if err != nil {
		t.Fatal(err)
	}
	dead := exec.Command("true")
	if err := dead.Run(); err != nil {
		t.Fatal(err)
	}
	plant := func(pid int) string {
		id, err := newWriterID(s.keys, bytes.NewReader(make([]byte, 4)))
		if err != nil {
			t.Fatal(err)
		}
		binary.BigEndian.PutUint32(id[8:12], uint32(pid))
		blob := encodeLock(s.keys, lockRecord{writer: id, expires: time.Now().Add(lockLease)})
		for _, b := range bs {
			if err := b.Put(ctx, lockName(id), blob); err != nil {
				t.Fatal(err)
			}
		}
		return lockName(id)
	}

	name := plant(dead.Process.Pid)
	var log logBuffer
	opts := ts.opts(bs)
	opts.Logger = slog.New(slog.NewTextHandler(&log, nil))
	w, err := Open(ctx, opts, sec)
	if err != nil {
		t.Fatal(err)
	}
	tctx, cancel := context.WithTimeout(ctx, 30*time.Second) // far less than the 2 min lease
	defer cancel()
	if _, err := w.Put(tctx, "after-crash", strings.NewReader("x"), 0o644, time.Now()); err != nil {
		t.Fatalf("put with a dead local writer's lease: %v", err)
	}
	if !strings.Contains(log.String(), "taking over the writer lock") {
		t.Errorf("takeover not logged: %s", log.String())
	}
	for _, b := range bs {
		if _, err := b.Get(ctx, name, 0, -1); err == nil {
			t.Errorf("stale lock still on %s", b.ID())
		}
	}

	plant(os.Getppid()) // a running process of ours: a real holder
	tctx, cancel = context.WithTimeout(ctx, 1500*time.Millisecond)
	defer cancel()
	if _, err := w.Put(tctx, "blocked", strings.NewReader("x"), 0o644, time.Now()); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("put while a live writer holds the lock: %v, want a wait until the deadline", err)
	}
	if out := log.String(); !strings.Contains(out, "waiting for the store's writer lock") || !strings.Contains(out, "lease_expires_in") {
		t.Errorf("the wait is not logged with its holder and time: %s", out)
	}
}
