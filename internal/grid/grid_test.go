package grid

import (
	"bytes"
	"context"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// TestRunOnHost runs a one-node grid with its node on the host (no
// namespaces), twice on the same directory, and checks that the second run
// reuses the state and that cancelling leaves no process behind. It
// deploys nothing, so it runs without root or the nodes' tools: its Host
// says they are there (TestRunStopsWhenSomethingIsMissing covers the
// check).
func TestRunOnHost(t *testing.T) {
	if _, err := exec.LookPath("go"); err != nil {
		t.Skip("needs the Go toolchain to build zgridd and the example")
	}
	dir := t.TempDir()
	var first *File
	for run := 0; run < 2; run++ {
		ctx, cancel := context.WithCancel(t.Context())
		var out, logs lockedBuffer
		done := make(chan error, 1)
		go func() {
			done <- Run(ctx, Config{Dir: dir, Nodes: 1, LedgerAddr: "127.0.0.1:0", HubAddr: "127.0.0.1:0",
				BlockInterval: 200 * time.Millisecond, Heartbeat: 2 * time.Second, Host: fakeHost(),
				Log: slog.New(slog.NewTextHandler(&logs, nil)), Stdout: &out})
		}()
		deadline := time.After(3 * time.Minute) // the first run builds zgridd and the example
		for !strings.Contains(out.String(), "grid ready") {
			select {
			case err := <-done:
				t.Fatalf("run %d stopped: %v\n%s", run, err, logs.String())
			case <-deadline:
				cancel()
				<-done
				t.Fatalf("run %d: no grid ready\n%s", run, logs.String())
			case <-time.After(100 * time.Millisecond):
			}
		}
		f, err := Load(filepath.Join(dir, "grid.json"))
		if err != nil {
			t.Fatal(err)
		}
		if len(f.Nodes) != 1 || f.Nodes[0].Namespace != "" || f.Version != FileVersion || f.Example == "" {
			t.Fatalf("grid.json: %+v", f)
		}
		if spec, err := os.ReadFile(f.Example); err != nil || !strings.Contains(string(spec), "image: "+strings.TrimPrefix(f.Hub, "http://")+"/hello@sha256:") {
			t.Fatalf("example spec: %v\n%s", err, spec)
		}
		if first == nil {
			first = f
		} else if f.Farm != first.Farm || f.Nodes[0].ID != first.Nodes[0].ID {
			t.Fatalf("second run did not reuse the grid: %+v then %+v", first, f)
		}
		cancel()
		if err := <-done; err != nil {
			t.Fatalf("run %d: %v", run, err)
		}
		procs, _ := filepath.Glob("/proc/[0-9]*/cmdline")
		for _, p := range procs {
			if b, _ := os.ReadFile(p); bytes.Contains(b, []byte(dir)) {
				t.Errorf("process left behind: %s %q", p, b)
			}
		}
	}
}
