package main

import (
	"bufio"
	"bytes"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/atomicfile"
	"github.com/zerogrid/zerogrid/internal/storage/catalog"
	"github.com/zerogrid/zerogrid/internal/zdb"
)

// zdbProc is one `zgridd zdb` server process of a test.
type zdbProc struct {
	t    *testing.T
	bin  string
	dir  string
	addr string
	cmd  *exec.Cmd
}

// buildZgriddBinary builds cmd/zgridd once for the test.
func buildZgriddBinary(t *testing.T) string {
	t.Helper()
	bin := filepath.Join(t.TempDir(), "zgridd")
	if out, err := exec.Command("go", "build", "-o", bin, "../zgridd").CombinedOutput(); err != nil {
		t.Fatalf("build zgridd: %v\n%s", err, out)
	}
	return bin
}

// newZDBProc prepares a data directory with namespace "store" (password
// pw) and starts a server on a free loopback port.
func newZDBProc(t *testing.T, bin, pw string) *zdbProc {
	t.Helper()
	dir := t.TempDir()
	st, err := zdb.Open(zdb.Options{Dir: dir})
	if err != nil {
		t.Fatal(err)
	}
	ns, err := st.Create("store")
	if err == nil {
		err = ns.Configure("password", pw)
	}
	if err == nil {
		err = ns.Configure("public", "0")
	}
	if cerr := st.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		t.Fatalf("prepare namespace: %v", err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	p := &zdbProc{t: t, bin: bin, dir: dir, addr: addr}
	p.start()
	t.Cleanup(p.kill)
	return p
}

// start runs the server and waits for its ready line.
func (p *zdbProc) start() {
	p.t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		cmd := exec.Command(p.bin, "zdb", "--listen", p.addr, "--dir", p.dir, "--admin-password", "admin-secret")
		cmd.Stderr = os.Stderr
		out, err := cmd.StdoutPipe()
		if err != nil {
			p.t.Fatal(err)
		}
		if err := cmd.Start(); err != nil {
			p.t.Fatal(err)
		}
		line, _ := bufio.NewReader(out).ReadString('\n')
		if strings.HasPrefix(line, "zdb ready") {
			p.cmd = cmd
			return
		}
		cmd.Process.Kill()
		cmd.Wait()
		if time.Now().After(deadline) { // e.g. the port is still held
			p.t.Fatalf("zgridd zdb on %s did not start: %q", p.addr, line)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// kill stops the server with SIGKILL, as a crash would.
func (p *zdbProc) kill() {
	if p.cmd != nil {
		p.cmd.Process.Kill()
		p.cmd.Wait()
		p.cmd = nil
	}
}

// size sums the bytes under the server's data directory.
func (p *zdbProc) size() int64 {
	var n int64
	filepath.WalkDir(p.dir, func(_ string, e fs.DirEntry, err error) error {
		if err == nil && !e.IsDir() {
			if fi, err := e.Info(); err == nil {
				n += fi.Size()
			}
		}
		return nil
	})
	return n
}

// killWhen kills procs as soon as cond holds, unless done closes first;
// it reports whether it killed them before done closed.
func killWhen(cond func() bool, done <-chan struct{}, procs ...*zdbProc) bool {
	for {
		select {
		case <-done:
			return false
		default:
		}
		if cond() {
			for _, p := range procs {
				p.kill()
			}
			select {
			case <-done:
				return false // finished meanwhile: not mid-stream
			default:
				return true
			}
		}
		time.Sleep(time.Millisecond)
	}
}

func checkReport(t *testing.T, cfg string) (*catalog.CheckReport, error) {
	t.Helper()
	out, _, err := run(t, "store", "check", "--config", cfg, "-o", "json")
	var r catalog.CheckReport
	if jerr := json.Unmarshal([]byte(out), &r); jerr != nil {
		t.Fatalf("check -o json: %v: %q (%v)", jerr, out, err)
	}
	return &r, err
}

// TestCLIStoreFaultsZDB: six real `zgridd zdb` processes, k=4 m=2. A
// backend killed in the middle of a put: the put succeeds. Two killed in
// the middle of a get: the get returns identical bytes. A put with only k
// backends up fails, names the dead ones and leaves no file. With the
// servers back, check reports the damage, repair restores it, check is
// clean and the file reads back.
func TestCLIStoreFaultsZDB(t *testing.T) {
	if testing.Short() {
		t.Skip("starts six zdb server processes")
	}
	bin := buildZgriddBinary(t)
	t.Setenv("ZGRID_MNEMONIC", mnemonic(t))
	var procs []*zdbProc
	var b strings.Builder
	b.WriteString("k: 4\nm: 2\nsegment_size: 262144\nbackends:\n")
	for i := range 6 {
		pw := fmt.Sprintf("secret-%d", i)
		p := newZDBProc(t, bin, pw)
		procs = append(procs, p)
		fmt.Fprintf(&b, "  - {id: b%d, type: zdb, address: %q, namespace: store, password: %s, domain: rack%d}\n", i, p.addr, pw, i)
	}
	cfg := filepath.Join(t.TempDir(), "store.yaml")
	if err := os.WriteFile(cfg, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	work := t.TempDir()
	write := func(name string, n int) (string, []byte) {
		data := make([]byte, n)
		rand.Read(data)
		p := filepath.Join(work, name)
		if err := os.WriteFile(p, data, 0o600); err != nil {
			t.Fatal(err)
		}
		return p, data
	}
	if _, _, err := run(t, "store", "init", "--config", cfg); err != nil {
		t.Fatal(err)
	}
	srcB, dataB := write("b", 12<<20)
	if _, _, err := run(t, "store", "put", "--config", cfg, srcB, "healthy.bin"); err != nil {
		t.Fatal(err)
	}

	// Kill b0 once it has taken a few shards of a 12 MiB put.
	srcA, dataA := write("a", 12<<20)
	base := procs[0].size()
	done := make(chan struct{})
	var stderr string
	var putErr error
	go func() {
		defer close(done)
		_, stderr, putErr = run(t, "store", "put", "--config", cfg, srcA, "a.bin")
	}()
	mid := killWhen(func() bool { return procs[0].size() > base+512<<10 }, done, procs[0])
	<-done
	if putErr != nil || !strings.Contains(stderr, "shards could not be stored") {
		t.Fatalf("put with b0 killed mid-stream: %v, stderr %q", putErr, stderr)
	}
	if !mid {
		t.Fatal("the put finished before b0 was killed: the test proves nothing (make the file larger)")
	}
	procs[0].start()

	// Kill b1 and b2 once a get has written 1 MiB.
	dst := filepath.Join(work, "got-healthy")
	done = make(chan struct{})
	var getErr error
	go func() {
		defer close(done)
		_, _, getErr = run(t, "store", "get", "--config", cfg, "healthy.bin", dst)
	}()
	mid = killWhen(func() bool {
		tmp, _ := filepath.Glob(filepath.Join(work, ".got-healthy*"))
		for _, p := range tmp {
			if !atomicfile.IsTemp(filepath.Base(p)) {
				continue
			}
			if fi, err := os.Stat(p); err == nil && fi.Size() >= 1<<20 {
				return true
			}
		}
		return false
	}, done, procs[1], procs[2])
	<-done
	if getErr != nil {
		t.Fatalf("get with b1, b2 killed mid-stream: %v", getErr)
	}
	if !mid {
		t.Fatal("the get finished before b1 and b2 were killed: the test proves nothing")
	}
	if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, dataB) {
		t.Fatalf("get: %d bytes, %v", len(got), err)
	}

	// Only k = 4 backends up: a put cannot store k+1 shards.
	srcC, _ := write("c", 1<<20)
	_, _, err := run(t, "store", "put", "--config", cfg, srcC, "c.bin")
	if err == nil || !strings.Contains(err.Error(), `"b1"`) || !strings.Contains(err.Error(), `"b2"`) || !strings.Contains(err.Error(), "need 5") {
		t.Fatalf("put with two backends down: %v", err)
	}
	if out, _, err := run(t, "store", "ls", "--config", cfg); err != nil || strings.Contains(out, "c.bin") {
		t.Fatalf("ls after a failed put: %q %v", out, err)
	}

	procs[1].start()
	procs[2].start()
	r, err := checkReport(t, cfg)
	if err == nil || !strings.Contains(err.Error(), "zgrid store repair") {
		t.Fatalf("check of a degraded store: %v", err)
	}
	var a catalog.FileHealth
	for _, f := range r.Files {
		if f.Name == "a.bin" {
			a = f
		}
	}
	if a.Health != catalog.Degraded || r.Degraded != 1 || r.Healthy != 1 {
		t.Fatalf("check: %+v", r)
	}
	bad := map[string]bool{}
	for _, p := range a.Problems {
		if p.Problem != catalog.ProblemUnplaced {
			t.Fatalf("a.bin: %v", p)
		}
		bad[p.Segment] = true
	}
	if len(bad) == 0 || len(bad) >= a.Segments {
		t.Fatalf("a.bin: %d of %d segments lack b0's shard: b0 was not killed mid-put", len(bad), a.Segments)
	}
	out, _, err := run(t, "store", "repair", "--config", cfg)
	if err != nil || !strings.Contains(out, "shards repaired") {
		t.Fatalf("repair: %q %v", out, err)
	}
	if r, err := checkReport(t, cfg); err != nil || !r.OK() || r.Healthy != 2 {
		t.Fatalf("check after repair: %+v %v", r, err)
	}
	dst = filepath.Join(work, "got-a")
	if _, _, err := run(t, "store", "get", "--config", cfg, "a.bin", dst); err != nil {
		t.Fatal(err)
	}
	if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, dataA) {
		t.Fatalf("get after repair: %d bytes, %v", len(got), err)
	}
	// The failed put left nothing behind that gc would not find.
	out, _, err = run(t, "store", "gc", "--config", cfg, "--grace", "0")
	if err != nil || !strings.Contains(out, "objects deleted") {
		t.Fatalf("gc: %q %v", out, err)
	}
	if r, err := checkReport(t, cfg); err != nil || !r.OK() {
		t.Fatalf("check after gc: %+v %v", r, err)
	}
}
