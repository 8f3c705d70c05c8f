package container

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
	"github.com/zerogrid/zerogrid/internal/workload/idmap"
	"github.com/zerogrid/zerogrid/internal/workload/volume"
)

// needContainers skips a test that runs real containers where this
// machine cannot.
func needContainers(t *testing.T) {
	t.Helper()
	if err := Available("runc", "ip"); err != nil {
		t.Skipf("cannot run containers here: %v", err)
	}
}

var nextSubnet atomic.Int32

// env is one node's worth of managers over fresh directories, with a
// registry holding the test server image. Everything it created is
// removed when the test ends, also after a failure.
type env struct {
	reg  *testRegistry
	ref  string // the server image, pinned
	cfg  Config
	vols *volume.Manager
	ctrs *Manager
}

func newEnv(t *testing.T) *env {
	t.Helper()
	e := newNode(t)
	e.reg = newTestRegistry(t)
	e.ref = e.reg.push(t, "server", serverImage(t))
	return e
}

// newNode is an env without a registry.
func newNode(t *testing.T) *env {
	t.Helper()
	needContainers(t)
	e := &env{}
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	if testing.Verbose() {
		log = slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	ids, err := idmap.Open(dir, idmap.DefaultPool)
	if err != nil {
		t.Fatal(err)
	}
	e.cfg = Config{
		DataDir: dir, RunDir: t.TempDir(), Log: log, Clock: workload.SystemClock{},
		Subnet:      netip.MustParsePrefix(fmt.Sprintf("10.251.%d.0/24", nextSubnet.Add(1))),
		StopTimeout: 2 * time.Second, IDs: ids,
	}
	vols, err := volume.New(volume.Config{DataDir: dir, Log: log, Clock: workload.SystemClock{}, IDs: ids})
	if err != nil {
		t.Fatal(err)
	}
	e.vols, e.ctrs = vols, e.open(t)
	t.Cleanup(func() { e.removeAll(t) })
	return e
}

// open returns a new container manager over the env's directories, as
// after an agent restart.
func (e *env) open(t *testing.T) *Manager {
	t.Helper()
	m, err := New(e.cfg)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func (e *env) removeAll(t *testing.T) {
	ctx := context.Background()
	e.ctrs.Close()
	m := e.open(t)
	defer m.Close()
	for _, mgr := range []workload.Manager{m, e.vols} {
		refs, err := mgr.List(ctx)
		if err != nil {
			t.Errorf("cleanup: %v", err)
		}
		for _, r := range refs {
			if err := mgr.Deprovision(ctx, workload.Deployment{ID: r.Deployment}, r.Name); err != nil {
				t.Errorf("cleanup %v: %v", r, err)
			}
		}
	}
}

// deployment returns a deployment whose siblings resolve through the
// env's managers, with one secret.
func (e *env) deployment(id uint64, ws ...spec.Workload) workload.Deployment {
	d := workload.Deployment{ID: id, Generation: 1, Owner: 7,
		Secrets: workload.NewSecrets(map[string][]byte{"TOKEN": []byte("s3cret")})}
	s := &spec.Spec{Version: spec.Version, Workloads: ws}
	d.Siblings = workload.NewSiblings(d, s, map[string]workload.Manager{spec.TypeVolume: e.vols, spec.TypeContainer: e.ctrs})
	return d
}

func containerWorkload(t *testing.T, name, image string, edit func(*spec.ContainerConfig)) spec.Workload {
	t.Helper()
	c := spec.ContainerConfig{Image: image, Ports: []uint16{8080}}
	if edit != nil {
		edit(&c)
	}
	w := spec.Workload{Name: name, Type: spec.TypeContainer, Resources: spec.Resources{CPU: 250, Memory: 64 << 20}}
	if err := w.SetConfig(c); err != nil {
		t.Fatal(err)
	}
	return w
}

// get fetches url from the node's namespace.
func get(t *testing.T, url string) string {
	t.Helper()
	c := http.Client{Timeout: 5 * time.Second}
	resp, err := c.Get(url)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s %v: %s", url, resp.Status, err, b)
	}
	return string(b)
}

// runcPid is the pid runc reports for ref's container (0 if none).
func (e *env) runcPid(t *testing.T, m *Manager, ref workload.Ref) int {
	t.Helper()
	st, err := m.runc.state(context.Background(), m.layout.id(ref))
	if err != nil {
		t.Fatal(err)
	}
	return st.Pid
}

// waitEvent polls Observe until an event whose reason contains want
// arrives and the state is state; it returns the last status.
func waitEvent(t *testing.T, m workload.Manager, d workload.Deployment, name, want string, state workload.State, timeout time.Duration) workload.Status {
	t.Helper()
	var seen []string
	found := false
	deadline := time.Now().Add(timeout)
	for {
		st, err := m.Observe(context.Background(), d, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, ev := range st.Events {
			seen = append(seen, ev.Kind+": "+ev.Reason)
			found = found || strings.Contains(ev.Reason, want)
		}
		if found && st.State == state {
			return st
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: no event %q with state %s after %v; state %s (%s), events %q", name, want, state, timeout, st.State, st.Reason, seen)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func linkExists(name string) bool {
	return exec.Command("ip", "link", "show", "dev", name).Run() == nil
}
