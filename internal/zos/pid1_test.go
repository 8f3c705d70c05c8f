package zos

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

func TestPinnedRelease(t *testing.T) {
	t.Parallel()
	good := bytes.Repeat([]byte("zgridd"), 1000)
	serve := map[string][]byte{
		"/good/boot/zgridd":   good,
		"/tamper/boot/zgridd": append(append([]byte{}, good[:len(good)-1]...), 'X'),
		"/long/boot/zgridd":   append(append([]byte{}, good...), 'X'),
		"/short/boot/zgridd":  good[:10],
	}
	ts := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, ok := serve[r.URL.Path]
		if !ok {
			http.NotFound(w, r)
			return
		}
		w.Write(b)
	}))
	t.Cleanup(ts.Close)
	cfg := &BootConfig{Release: ReleasePin{SHA256: fmt.Sprintf("%x", sha256.Sum256(good)), Size: int64(len(good))}}
	for _, tc := range []struct {
		path    string
		refused bool
		ok      bool
	}{
		{"/good", false, true},
		{"/tamper", true, false},
		{"/long", true, false},
		{"/short", true, false},
		{"/missing", false, false},
	} {
		t.Run(tc.path, func(t *testing.T) {
			src, err := NewPinnedRelease(cfg, ts.URL+tc.path)
			if err != nil {
				t.Fatal(err)
			}
			rel, err := src.Fetch(context.Background())
			if tc.ok {
				if err != nil || !bytes.Equal(rel.Binary, good) || !strings.HasPrefix(rel.Version, "sha256:") {
					t.Fatalf("Fetch = %q, %v", rel.Version, err)
				}
				return
			}
			if err == nil || rel.Binary != nil {
				t.Fatalf("Fetch of %s succeeded", tc.path)
			}
			if errors.Is(err, ErrReleaseRefused) != tc.refused {
				t.Fatalf("Fetch of %s: %v; refused should be %v", tc.path, err, tc.refused)
			}
		})
	}
	if _, err := NewPinnedRelease(cfg, ""); err == nil || !strings.Contains(err.Error(), "zos.hub=") {
		t.Fatalf("no hub: %v", err)
	}
}

func validBootConfig() string {
	return `{"version":1,"build_time":"2026-12-08T00:00:00Z","kernel":"6.1","modules":["/lib/modules/6.1/kernel/a.ko"],` +
		`"release":{"hub":"http://10.0.2.2:5000","sha256":"` + strings.Repeat("ab", 32) + `","size":10},"agent":["node"]}`
}

func TestParseBootConfig(t *testing.T) {
	t.Parallel()
	if _, err := ParseBootConfig(strings.NewReader(validBootConfig())); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for name, edit := range map[string][2]string{
		"version":       {`"version":1`, `"version":2`},
		"unknown field": {`"version":1`, `"version":1,"debug_shell":true`},
		"module path":   {`/lib/modules/6.1/kernel/a.ko`, `/tmp/../lib/modules/a.ko`},
		"hash":          {strings.Repeat("ab", 32), strings.Repeat("AB", 32)},
		"size":          {`"size":10`, `"size":0`},
		"hub":           {`http://10.0.2.2:5000`, `file:///etc/passwd`},
		"agent":         {`["node"]`, `[]`},
		"build time":    {`"build_time":"2026-12-08T00:00:00Z",`, ``},
		"trailing":      {`["node"]}`, `["node"]}{}`},
	} {
		t.Run(name, func(t *testing.T) {
			bad := strings.Replace(validBootConfig(), edit[0], edit[1], 1)
			if _, err := ParseBootConfig(strings.NewReader(bad)); !errors.Is(err, ErrBadBootConfig) {
				t.Fatalf("ParseBootConfig(%s) = %v, want ErrBadBootConfig", bad, err)
			}
		})
	}
}

func FuzzParseBootConfig(f *testing.F) {
	f.Add([]byte(validBootConfig()))
	f.Add([]byte(`{}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		c, err := ParseBootConfig(bytes.NewReader(data))
		if err == nil && (c.Version != 1 || len(c.Agent) == 0) {
			t.Fatalf("accepted an invalid config: %+v", c)
		}
	})
}

func TestCmdlineHub(t *testing.T) {
	t.Parallel()
	if got := CmdlineHub("console=ttyS0 zos.hub=http://a:1 quiet zos.hub=http://b:2\n"); got != "http://b:2" {
		t.Fatalf("CmdlineHub = %q", got)
	}
	if got := CmdlineHub("console=ttyS0"); got != "" {
		t.Fatalf("CmdlineHub = %q", got)
	}
}

func TestRaiseClock(t *testing.T) {
	t.Parallel()
	floor := time.Date(2026, 12, 8, 0, 0, 0, 0, time.UTC)
	var set []time.Time
	setf := func(t time.Time) error { set = append(set, t); return nil }
	log := slog.New(slog.DiscardHandler)
	raiseClock(log, floor.Add(time.Hour), floor, setf)
	if len(set) != 0 {
		t.Fatalf("a clock after the floor was set: %v", set)
	}
	raiseClock(log, time.Unix(0, 0), floor, setf)
	if len(set) != 1 || !set[0].Equal(floor) {
		t.Fatalf("a clock before the floor: set %v, want %v", set, floor)
	}
}

// fakeSource returns the results in order, then the last forever.
type fakeSource struct {
	mu      sync.Mutex
	results []error
	calls   int
}

func (f *fakeSource) Fetch(context.Context) (Release, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	err := f.results[min(f.calls, len(f.results)-1)]
	f.calls++
	if err != nil {
		return Release{}, err
	}
	return Release{Version: "v", Binary: []byte("bin")}, nil
}

func TestSupervisorBackoff(t *testing.T) {
	t.Parallel()
	refused := fmt.Errorf("%w: bad hash", ErrReleaseRefused)
	src := &fakeSource{results: []error{refused, errors.New("connection refused"), nil}}
	now := time.Unix(1000, 0)
	var sleeps []time.Duration
	var starts int
	// Agents run 1 s, then 2 min (stable), then 1 s.
	runs := []time.Duration{time.Second, 2 * time.Minute, time.Second, time.Second}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var logs bytes.Buffer
	nowCalls := 0 // since the last start: the 1st reads the start, the 2nd the end
	s := &Supervisor{
		Source: src,
		Log:    slog.New(slog.NewTextHandler(&logs, nil)),
		Now: func() time.Time {
			if nowCalls++; nowCalls == 2 {
				now = now.Add(runs[starts-1])
			}
			return now
		},
		Sleep: func(_ context.Context, d time.Duration) {
			sleeps = append(sleeps, d)
			now = now.Add(d)
			if len(sleeps) == 6 {
				cancel()
			}
		},
		Start: func(_ context.Context, rel Release) (<-chan string, error) {
			if string(rel.Binary) != "bin" {
				t.Errorf("started %q", rel.Binary)
			}
			starts++
			nowCalls = 0
			ch := make(chan string, 1)
			ch <- "exit status 1"
			return ch, nil
		},
	}
	if err := s.Run(ctx); !errors.Is(err, context.Canceled) {
		t.Fatalf("Run = %v", err)
	}
	// refused: 1s; fetch error: 2s; run 1s: 4s; run 2min (stable): reset
	// to 1s; run 1s: 2s; run 1s: 4s.
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, time.Second, 2 * time.Second, 4 * time.Second}
	if fmt.Sprint(sleeps) != fmt.Sprint(want) {
		t.Fatalf("backoffs %v, want %v", sleeps, want)
	}
	if starts != 4 {
		t.Fatalf("%d starts, want 4 (never after a refusal)", starts)
	}
	if !strings.Contains(logs.String(), "REFUSED node release") || !strings.Contains(logs.String(), "bad hash") {
		t.Fatalf("the refusal is not logged with its reason:\n%s", logs.String())
	}
}

func TestSupervisorBackoffCap(t *testing.T) {
	t.Parallel()
	src := &fakeSource{results: []error{fmt.Errorf("%w: x", ErrReleaseRefused)}}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var sleeps []time.Duration
	s := &Supervisor{Source: src, Start: func(context.Context, Release) (<-chan string, error) {
		t.Fatal("a refused release was started")
		return nil, nil
	}, Sleep: func(_ context.Context, d time.Duration) {
		if sleeps = append(sleeps, d); len(sleeps) == 10 {
			cancel()
		}
	}}
	s.Run(ctx)
	if sleeps[len(sleeps)-1] != DefaultMaxBackoff {
		t.Fatalf("backoffs %v do not reach the cap %v", sleeps, DefaultMaxBackoff)
	}
}

func TestSealedMemfdRuns(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		prog string
		code int
	}{{"true", 0}, {"false", 1}} {
		p, err := exec.LookPath(tc.prog)
		if err != nil {
			t.Skipf("no %s", tc.prog)
		}
		data, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		mf, err := sealedMemfd(tc.prog, data)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := mf.WriteAt([]byte("x"), 0); err == nil {
			t.Fatal("a sealed memfd accepted a write")
		}
		if err := mf.Truncate(1); err == nil {
			t.Fatal("a sealed memfd accepted a truncate")
		}
		// Run it through os.StartProcess, as startAgent does.
		proc, err := os.StartProcess(memfdPath(mf), []string{tc.prog}, &os.ProcAttr{})
		mf.Close()
		if err != nil {
			t.Fatal(err)
		}
		st, err := proc.Wait()
		if err != nil || st.ExitCode() != tc.code {
			t.Fatalf("%s from memfd: %v, exit %d", tc.prog, err, st.ExitCode())
		}
	}
}

// TestReaper is not parallel: the Reaper waits for any child of the
// process, so it must run alone.
func TestReaper(t *testing.T) {
	sh, err := exec.LookPath("sleep")
	if err != nil {
		t.Skip("no sleep")
	}
	r := NewReaper(slog.New(slog.DiscardHandler))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { r.Run(ctx); close(done) }()
	defer func() { cancel(); <-done }()
	f, _ := exec.LookPath("false")
	_, ch, err := r.Start(f, []string{"false"}, &os.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	select {
	case ws := <-ch:
		if !ws.Exited() || ws.ExitStatus() != 1 {
			t.Fatalf("status %s", describeExit(ws))
		}
	case <-time.After(10 * time.Second):
		t.Fatal("exit not reported")
	}
	pid, ch, err := r.Start(sh, []string{"sleep", "30"}, &os.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	unix.Kill(pid, unix.SIGKILL)
	if ws := <-ch; !ws.Signaled() || describeExit(ws) != "killed by killed" {
		t.Fatalf("status %s", describeExit(ws))
	}
	// A child not started through the Reaper (an orphan, as the kernel
	// hands PID 1) is reaped too: no zombie stays.
	p, err := os.StartProcess(f, []string{"false"}, &os.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	opid := p.Pid
	p.Release()
	deadline := time.Now().Add(10 * time.Second)
	for r.Orphans() == 0 && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if r.Orphans() != 1 {
		t.Fatal("the orphan was not reaped")
	}
	if err := unix.Kill(opid, 0); !errors.Is(err, unix.ESRCH) {
		t.Fatalf("orphan %d still exists (zombie): %v", opid, err)
	}
}
