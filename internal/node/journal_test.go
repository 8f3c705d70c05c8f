package node

import (
	"crypto/rand"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/eventlog"
	"github.com/zerogrid/zerogrid/internal/identity"
)

func openJ(t testing.TB, dir string, key identity.PrivateKey) *Journal {
	t.Helper()
	j, err := OpenJournal(dir, key, 7, time.Now, slog.New(slog.DiscardHandler))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { j.Close() })
	return j
}

func TestJournal(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	key, _ := identity.GenerateKey(rand.Reader)
	j := openJ(t, dir, key)
	for _, k := range []string{eventlog.KindAccepted, eventlog.KindProvisioning, eventlog.KindReady} {
		if _, err := j.Append(1, "web", k, ""); err != nil {
			t.Fatal(err)
		}
	}
	if got := j.Unreported(2); len(got) != 2 || got[0].Event.Seq != 1 {
		t.Fatalf("unreported: %+v", got)
	}
	j.Reported(2)
	if got := j.Unreported(10); len(got) != 1 || got[0].Event.Seq != 3 {
		t.Fatalf("after reporting 2: %+v", got)
	}
	j.Close()

	// A crash mid-write leaves a torn record: it is cut off on open.
	path := filepath.Join(dir, "7.events")
	f, _ := os.OpenFile(path, os.O_WRONLY|os.O_APPEND, 0)
	f.Write([]byte{0, 0, 1, 0, 0xa2, 0x65})
	f.Close()
	j2 := openJ(t, dir, key)
	if j2.Len() != 3 {
		t.Fatalf("after reopen: %d events", j2.Len())
	}
	if _, err := j2.Append(1, "web", eventlog.KindRestarted, "exit 137"); err != nil {
		t.Fatal(err)
	}
	all := j2.Unreported(100)
	if s, _, err := eventlog.Verify(key.Public(), 7, 0, [32]byte{}, all); err != nil || s != 4 {
		t.Fatalf("chain after torn tail: %d %v", s, err)
	}
	h3, _ := all[2].Event.Hash()
	if err := j2.Sync(3, h3); err != nil || len(j2.Unreported(100)) != 1 {
		t.Fatalf("sync to ledger head 3: %v", err)
	}
	if err := j2.Sync(9, h3); !errors.Is(err, ErrJournalBehind) {
		t.Fatalf("ledger ahead: %v", err)
	}
	if err := j2.Sync(3, [32]byte{1}); !errors.Is(err, ErrJournalDiverged) {
		t.Fatalf("diverged: %v", err)
	}
	// A node that lost its disk restores the chain from the ledger.
	j3 := openJ(t, t.TempDir(), key)
	if err := j3.Restore(all); err != nil || j3.Len() != 4 || len(j3.Unreported(10)) != 0 {
		t.Fatalf("restore: %v", err)
	}
	if s, err := j3.Append(1, "web", eventlog.KindReady, ""); err != nil || s.Event.Seq != 5 {
		t.Fatalf("append after restore: %+v %v", s, err)
	}
}

func FuzzOpenJournal(f *testing.F) {
	key, _ := identity.NewPrivateKey(make([]byte, 32))
	dir := f.TempDir()
	j, _ := OpenJournal(dir, key, 7, time.Now, slog.New(slog.DiscardHandler))
	j.Append(1, "web", eventlog.KindReady, "")
	j.Close()
	seed, _ := os.ReadFile(filepath.Join(dir, "7.events"))
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		dir := t.TempDir()
		os.WriteFile(filepath.Join(dir, "7.events"), data, 0o600)
		j, err := OpenJournal(dir, key, 7, time.Now, slog.New(slog.DiscardHandler))
		if err != nil {
			return
		}
		defer j.Close()
		if _, err := j.Append(1, "w", eventlog.KindReady, ""); err != nil {
			t.Fatal(err)
		}
	})
}
