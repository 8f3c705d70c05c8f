package clustertest

import (
	"bufio"
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// Bounds on process life-cycle steps.
const (
	readyTimeout = 60 * time.Second
	exitTimeout  = 20 * time.Second
	logTailLines = 40
)

// buildZgridd compiles cmd/zgridd into a temporary directory once per test.
func buildZgridd(t *testing.T) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	gomod := strings.TrimSpace(string(out))
	if gomod == "" || gomod == os.DevNull {
		t.Fatalf("go env GOMOD = %q: the test must run inside the module", gomod)
	}
	bin := filepath.Join(t.TempDir(), "zgridd")
	build := exec.Command("go", "build", "-o", bin, "./cmd/zgridd")
	build.Dir = filepath.Dir(gomod)
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("go build ./cmd/zgridd: %v\n%s", err, out)
	}
	return bin
}

// readyRE matches the line `zgridd chain` prints once its RPC is up.
var readyRE = regexp.MustCompile(`^ledger ready: rpc (http://\S+) height \d+ home `)

// validator is one `zgridd chain` process. Its stdout and stderr go to a
// log file that survives restarts; the file's tail is logged if the test
// fails.
type validator struct {
	name string
	argv []string
	log  string

	cmd     *exec.Cmd
	ready   chan string   // receives the RPC URL from the ready line
	url     string        // RPC URL from the ready line
	done    chan struct{} // closed once the process has exited
	waitErr error         // the process's exit; read only after done
}

func newValidator(t *testing.T, name string, argv []string, logDir string) *validator {
	v := &validator{name: name, argv: argv, log: filepath.Join(logDir, name+".log")}
	t.Cleanup(func() {
		v.reap(t)
		if t.Failed() {
			t.Logf("%s: last lines of %s:\n%s", v.name, v.log, tail(v.log, logTailLines))
		}
	})
	return v
}

// start runs the process and waits for its ready line.
func (v *validator) start(t *testing.T) {
	t.Helper()
	v.launch(t)
	v.awaitReady(t)
}

// launch starts the process; awaitReady then waits for its ready line.
func (v *validator) launch(t *testing.T) {
	t.Helper()
	f, err := os.OpenFile(v.log, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(f, "=== %s start: %s\n", time.Now().Format(time.RFC3339Nano), strings.Join(v.argv, " "))
	v.ready = make(chan string, 1)
	v.cmd = exec.Command(v.argv[0], v.argv[1:]...)
	v.cmd.Stdout = &readyWriter{out: f, ready: v.ready}
	v.cmd.Stderr = f
	v.cmd.SysProcAttr = childAttr()
	v.done = make(chan struct{})
	if err := v.cmd.Start(); err != nil {
		f.Close()
		t.Fatalf("%s: start: %v", v.name, err)
	}
	go func(cmd *exec.Cmd, done chan struct{}) {
		v.waitErr = cmd.Wait()
		f.Close()
		close(done)
	}(v.cmd, v.done)
}

func (v *validator) awaitReady(t *testing.T) {
	t.Helper()
	timer := time.NewTimer(readyTimeout)
	defer timer.Stop()
	select {
	case v.url = <-v.ready:
	case <-v.done:
		t.Fatalf("%s exited before it was ready: %v", v.name, v.waitErr)
	case <-timer.C:
		t.Fatalf("%s printed no ready line within %v", v.name, readyTimeout)
	}
}

func (v *validator) running() bool {
	if v.done == nil {
		return false
	}
	select {
	case <-v.done:
		return false
	default:
		return true
	}
}

// kill sends SIGKILL and waits for the process to be gone.
func (v *validator) kill(t *testing.T) {
	t.Helper()
	if err := v.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatalf("%s: SIGKILL: %v", v.name, err)
	}
	if !v.await(exitTimeout) {
		t.Fatalf("%s still running %v after SIGKILL", v.name, exitTimeout)
	}
}

// stop sends SIGTERM and requires a clean exit within exitTimeout.
func (v *validator) stop(t *testing.T) {
	t.Helper()
	if err := v.cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Errorf("%s: SIGTERM: %v", v.name, err)
		return
	}
	if !v.await(exitTimeout) {
		t.Errorf("%s still running %v after SIGTERM", v.name, exitTimeout)
		return
	}
	if v.waitErr != nil {
		t.Errorf("%s: exit after SIGTERM: %v; want status 0", v.name, v.waitErr)
	}
}

// reap kills a process the test left running, e.g. after a failure.
func (v *validator) reap(t *testing.T) {
	if !v.running() {
		return
	}
	_ = v.cmd.Process.Signal(syscall.SIGKILL)
	if !v.await(exitTimeout) {
		t.Errorf("%s (pid %d) survived SIGKILL", v.name, v.cmd.Process.Pid)
	}
}

func (v *validator) await(d time.Duration) bool {
	timer := time.NewTimer(d)
	defer timer.Stop()
	select {
	case <-v.done:
		return true
	case <-timer.C:
		return false
	}
}

// readyWriter copies a process's stdout to its log and reports the RPC URL
// of the first ready line. exec.Cmd calls Write from one goroutine.
type readyWriter struct {
	out   *os.File
	ready chan<- string
	line  []byte
	seen  bool
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.line = append(w.line, p...)
	for {
		i := bytes.IndexByte(w.line, '\n')
		if i < 0 {
			break
		}
		if m := readyRE.FindSubmatch(w.line[:i]); m != nil && !w.seen {
			w.seen = true
			w.ready <- string(m[1])
		}
		w.line = w.line[i+1:]
	}
	return w.out.Write(p)
}

// tail returns the last n lines of the file at path.
func tail(path string, n int) string {
	f, err := os.Open(path)
	if err != nil {
		return err.Error()
	}
	defer f.Close()
	var lines []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 64*1024), 1024*1024)
	for sc.Scan() {
		lines = append(lines, sc.Text())
		if len(lines) > n {
			lines = lines[1:]
		}
	}
	if err := sc.Err(); err != nil {
		lines = append(lines, "(reading log: "+err.Error()+")")
	}
	return strings.Join(lines, "\n")
}
