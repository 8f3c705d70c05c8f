package container

import (
	"errors"
	"log/slog"
	"os"
	"strings"
	"testing"

	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
)

// TestNewWithoutRunc: a machine without runc gets no container manager,
// and the error says what to install.
func TestNewWithoutRunc(t *testing.T) {
	t.Parallel()
	_, err := New(Config{DataDir: t.TempDir(), RunDir: t.TempDir(), Log: slog.New(slog.DiscardHandler), Clock: workload.SystemClock{},
		Runc: "/nonexistent/runc"})
	var un *workload.UnavailableError
	if !errors.As(err, &un) || un.Type != spec.TypeContainer || !errors.Is(err, workload.ErrUnsupported) {
		t.Fatalf("New without runc: %v, want an UnavailableError for containers", err)
	}
	want := "containers need root"
	if os.Geteuid() == 0 {
		want = "runc is not installed (Debian package runc)"
	}
	if !strings.Contains(un.Reason, want) {
		t.Errorf("reason %q does not say %q", un.Reason, want)
	}
}
