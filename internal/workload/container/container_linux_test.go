package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/eventlog"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
	"github.com/zerogrid/zerogrid/internal/workload/idmap"
	"github.com/zerogrid/zerogrid/internal/workload/mountinfo"
	"github.com/zerogrid/zerogrid/internal/workload/workloadtest"
)

// TestLifecycle walks one container with a volume through everything a
// node does to it: provision, serve, survive a kill, survive an agent
// restart, and leave nothing behind.
func TestLifecycle(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	vol := spec.Workload{Name: "data", Type: spec.TypeVolume, Resources: spec.Resources{Disk: 16 << 20}}
	web := containerWorkload(t, "web", e.ref, func(c *spec.ContainerConfig) {
		c.Env = map[string]string{"GREETING": "from-spec"}
		c.SecretEnv = []string{"TOKEN"}
		c.Mounts = []spec.Mount{{Volume: "data", Path: "/data"}}
	})
	d := e.deployment(42, vol, web)
	ref := workload.Ref{Deployment: 42, Name: "web"}

	if err := e.ctrs.Provision(ctx, d, web); !errors.Is(err, workload.ErrDependency) {
		t.Fatalf("container before its volume: %v, want ErrDependency", err)
	}
	if err := e.vols.Provision(ctx, d, vol); err != nil {
		t.Fatal(err)
	}
	if err := e.ctrs.Provision(ctx, d, web); err != nil {
		t.Fatal(err)
	}
	st := workloadtest.WaitReady(t, e.ctrs, d, "web", 15*time.Second)
	url := "http://" + st.Addr + ":8080/"
	if got := get(t, url); got != "hello from-spec count=1 token=s3cret\n" {
		t.Fatalf("GET / = %q", got)
	}
	checkSandbox(t, e, ref, url)
	checkUserNamespace(t, e, d, ref)

	pid := e.runcPid(t, e.ctrs, ref)
	if err := e.ctrs.Provision(ctx, d, web); err != nil {
		t.Fatalf("second Provision: %v", err)
	}
	if p := e.runcPid(t, e.ctrs, ref); p != pid {
		t.Fatalf("a second Provision replaced the process: pid %d, then %d", pid, p)
	}

	// Kill the container's process from the host: it comes back.
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	st = waitEvent(t, e.ctrs, d, "web", "restarted after exit code 137", workload.Ready, 10*time.Second)
	if st.Restarts != 1 {
		t.Errorf("Restarts = %d after one kill", st.Restarts)
	}
	if got := get(t, url); !strings.Contains(got, "count=2") {
		t.Fatalf("after a restart GET / = %q, want the count kept on the volume", got)
	}
	checkAdoption(t, e, d, web, ref, url)
}

// checkAdoption: a new manager (the agent restarted) finds the running
// container and adopts it instead of starting another, then removes it
// and everything it had.
func checkAdoption(t *testing.T, e *env, d workload.Deployment, web spec.Workload, ref workload.Ref, url string) {
	ctx := context.Background()
	pid := e.runcPid(t, e.ctrs, ref)
	e.ctrs.Close()
	m := e.open(t)
	defer m.Close()
	d.Siblings = workload.NewSiblings(d, &spec.Spec{Version: spec.Version, Workloads: []spec.Workload{
		{Name: "data", Type: spec.TypeVolume}, web}}, map[string]workload.Manager{spec.TypeVolume: e.vols, spec.TypeContainer: m})
	if refs, _ := m.List(ctx); len(refs) != 1 || refs[0] != ref {
		t.Fatalf("the new manager lists %v", refs)
	}
	if st, err := m.Observe(ctx, d, "web"); err != nil || st.State != workload.Pending {
		t.Fatalf("before adoption: %+v, %v; want Pending", st, err)
	}
	before := e.reg.requests.Load()
	if err := m.Provision(ctx, d, web); err != nil {
		t.Fatal(err)
	}
	if n := e.reg.requests.Load() - before; n != 0 {
		t.Errorf("adopting made %d registry requests: the image cache was not used", n)
	}
	st := waitEvent(t, m, d, "web", "adopted the running container", workload.Ready, 5*time.Second)
	if p := e.runcPid(t, m, ref); p != pid || st.Restarts != 1 {
		t.Fatalf("after adoption pid %d (was %d), restarts %d (was 1)", p, pid, st.Restarts)
	}
	if got := get(t, url); !strings.Contains(got, "count=3") {
		t.Fatalf("after adoption GET / = %q", got)
	}

	if err := m.Deprovision(ctx, d, "web"); err != nil {
		t.Fatal(err)
	}
	checkGone(t, m, ref, pid)
}

// checkGone: runc state, process, root filesystem, bundle, cgroup, network
// namespace and veth are all gone.
func checkGone(t *testing.T, m *Manager, ref workload.Ref, pid int) {
	t.Helper()
	if st, err := m.runc.state(context.Background(), m.layout.id(ref)); err != nil || st.Status != "" {
		t.Errorf("runc still knows the container: %+v, %v", st, err)
	}
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process %d still exists: %v", pid, err)
	}
	for _, p := range []string{m.layout.dir(ref), m.layout.bundle(ref), m.net.netnsPath(0), m.net.usernsPath(0), m.layout.mountPoint(ref)} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s still exists: %v", p, err)
		}
	}
	if dirs, _ := cgroupDirs(m.layout.cgroupPath(ref)); len(dirs) > 0 {
		t.Errorf("cgroup directories left: %v", dirs)
	}
	if linkExists(m.net.veth(0)) {
		t.Errorf("veth %s still exists", m.net.veth(0))
	}
}

// checkUserNamespace: root in the container is not root on the node. The
// container's processes run as its deployment's first host id, which its
// user namespace maps container ids 0..65535 from; what it writes as root
// on its volume, and its root filesystem, are owned by that id on the node.
func checkUserNamespace(t *testing.T, e *env, d workload.Deployment, ref workload.Ref) {
	t.Helper()
	rec, _, err := e.ctrs.layout.load(ref)
	if err != nil {
		t.Fatal(err)
	}
	base := rec.IDBase
	if base < idmap.Size {
		t.Fatalf("the container's id range starts at %d", base)
	}
	if r, ok, err := e.ctrs.ids.Lookup(d.ID); err != nil || !ok || r.Base != base {
		t.Errorf("the deployment has range %v (%v, %v), its container %d", r, ok, err, base)
	}
	pid := e.runcPid(t, e.ctrs, ref)
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", pid))
	if f := strings.Fields(string(b)); err != nil || !slices.Equal(f, []string{"0", fmt.Sprint(base), "65536"}) {
		t.Errorf("uid_map of the container's init: %q (%v), want 0 %d 65536", b, err, base)
	}
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, line := range strings.Split(string(status), "\n") {
		if f := strings.Fields(line); len(f) == 5 && (f[0] == "Uid:" || f[0] == "Gid:") && (f[1] != fmt.Sprint(base) || f[2] != fmt.Sprint(base)) {
			t.Errorf("on the node the container's root runs as %s, want %d", line, base)
		}
	}
	// runc got the root filesystem through a bind mount made only for the
	// start: nothing stays mounted on the node.
	if _, ok, err := mountinfo.At(e.ctrs.layout.mountPoint(ref)); err != nil || ok {
		t.Errorf("the root filesystem is still mounted at %s (%v)", e.ctrs.layout.mountPoint(ref), err)
	}
	data, err := e.vols.HostPath(context.Background(), d, "data")
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range []string{filepath.Join(data, "count"), data, e.ctrs.layout.rootfs(ref), filepath.Join(e.ctrs.layout.rootfs(ref), "server")} {
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		if st.Uid != base || st.Gid != base {
			t.Errorf("%s is owned by %d:%d on the node, want the container's root %d", p, st.Uid, st.Gid, base)
		}
	}
}

// checkSandbox checks the limits from the host and the profile from
// inside the container.
func checkSandbox(t *testing.T, e *env, ref workload.Ref, url string) {
	t.Helper()
	dirs, err := cgroupDirs(e.ctrs.layout.cgroupPath(ref))
	if err != nil || len(dirs) == 0 {
		t.Fatalf("no cgroup for the container: %v", err)
	}
	limits := map[string]string{}
	for _, d := range dirs {
		for _, f := range []string{"memory.max", "memory.limit_in_bytes", "cpu.max", "cpu.cfs_quota_us", "pids.max"} {
			if b, err := os.ReadFile(filepath.Join(d, f)); err == nil {
				limits[f] = strings.TrimSpace(string(b))
			}
		}
	}
	mem, cpu := limits["memory.max"]+limits["memory.limit_in_bytes"], limits["cpu.max"]+limits["cpu.cfs_quota_us"]
	if mem != "67108864" || (cpu != "25000 100000" && cpu != "25000") || limits["pids.max"] != "1024" {
		t.Errorf("cgroup limits %v, want 64 MiB memory, 25000/100000 CPU, 1024 pids", limits)
	}
	var p map[string]string
	if err := json.Unmarshal([]byte(get(t, url+"probe")), &p); err != nil {
		t.Fatal(err)
	}
	want := map[string]string{
		"no_new_privs": "1", "seccomp": "2", "root_write": "EROFS", "tmp_write": "ok",
		"unshare_user": "EPERM", "mknod": "EPERM", "default_route": "false", "hostname": "web", "pid": "1", "uid": "0",
		"cap_eff": "00000000000005fb", // chown dac_override fowner fsetid kill setgid setuid setpcap net_bind_service
	}
	for k, v := range want {
		if p[k] != v {
			t.Errorf("inside the container %s = %q, want %q", k, p[k], v)
		}
	}
}

func TestProvisionRefusesWrongDigest(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	other := tinyImage(t, "another image")
	e.reg.push(t, "server", other)
	pinned, _ := other.Digest()
	served, _ := serverImage(t).Digest()
	e.reg.serveInstead("server", pinned, served)
	ref := strings.Split(e.ref, "@")[0] + "@" + pinned.String()
	w := containerWorkload(t, "evil", ref, nil)
	err := e.ctrs.Provision(context.Background(), e.deployment(9, w), w)
	if !workload.IsPermanent(err) || !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("Provision of a substituted image = %v, want a permanent ErrDigestMismatch", err)
	}
	if r := workload.Reason(err); !strings.Contains(r, pinned.String()) || !strings.Contains(r, served.String()) {
		t.Errorf("reason %q does not name both digests", r)
	}
	if refs, _ := e.ctrs.List(context.Background()); len(refs) != 0 {
		t.Errorf("a refused image left %v", refs)
	}
	if _, err := os.Stat(e.ctrs.net.netnsPath(0)); !os.IsNotExist(err) {
		t.Errorf("a refused image got a network namespace: %v", err)
	}
}

func TestCrashLoopIsDegraded(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := containerWorkload(t, "crash", e.ref, func(c *spec.ContainerConfig) { c.Cmd = []string{"-exit", "3"}; c.Ports = nil })
	d := e.deployment(5, w)
	if err := e.ctrs.Provision(context.Background(), d, w); err != nil {
		t.Fatal(err)
	}
	st := waitEvent(t, e.ctrs, d, "crash", "crash loop", workload.Degraded, 20*time.Second)
	if st.Restarts < crashLoop || !strings.Contains(st.Reason, "exit code 3") {
		t.Errorf("crash loop status %+v", st)
	}
	if refs, _ := e.ctrs.List(context.Background()); len(refs) != 1 {
		t.Errorf("a crash-looping container was removed: %v", refs)
	}
}

func TestRestartPolicies(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	for i, tc := range []struct {
		policy, code string
		state        workload.State
		event        string
	}{
		{spec.RestartNever, "3", workload.Failed, `exited with exit code 3; restart policy "never"`},
		{spec.RestartOnFailure, "0", workload.Failed, `exited with exit code 0; restart policy "on-failure"`},
		{spec.RestartOnFailure, "4", workload.Provisioning, "restarted after exit code 4"},
	} {
		t.Run(tc.policy+"-"+tc.code, func(t *testing.T) {
			w := containerWorkload(t, "p", e.ref, func(c *spec.ContainerConfig) {
				c.Cmd, c.Ports, c.Restart = []string{"-exit", tc.code}, nil, tc.policy
			})
			d := e.deployment(uint64(100+i), w)
			if err := e.ctrs.Provision(context.Background(), d, w); err != nil {
				t.Fatal(err)
			}
			kind := eventlog.KindFailed
			if tc.state != workload.Failed {
				kind = eventlog.KindRestarted
			}
			deadline := time.Now().Add(10 * time.Second)
			for {
				st, err := e.ctrs.Observe(context.Background(), d, "p")
				if err != nil {
					t.Fatal(err)
				}
				if hasEvent(st.Events, kind, tc.event) && (st.State == tc.state || tc.state != workload.Failed) {
					return
				}
				if time.Now().After(deadline) {
					t.Fatalf("no %s event %q; last status %+v", kind, tc.event, st)
				}
				time.Sleep(50 * time.Millisecond)
			}
		})
	}
}

func hasEvent(evs []workload.Event, kind, text string) bool {
	for _, e := range evs {
		if e.Kind == kind && strings.Contains(e.Reason, text) {
			return true
		}
	}
	return false
}

func TestUpdateResourcesLive(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	w := containerWorkload(t, "live", e.ref, nil)
	d := e.deployment(6, w)
	ctx := context.Background()
	if err := e.ctrs.Provision(ctx, d, w); err != nil {
		t.Fatal(err)
	}
	workloadtest.WaitReady(t, e.ctrs, d, "live", 15*time.Second)
	ref := workload.Ref{Deployment: 6, Name: "live"}
	pid := e.runcPid(t, e.ctrs, ref)
	w.Resources.Memory = 96 << 20
	d.Generation = 2
	if err := e.ctrs.Update(ctx, d, w); err != nil {
		t.Fatal(err)
	}
	if p := e.runcPid(t, e.ctrs, ref); p != pid {
		t.Errorf("a change of limits restarted the container (pid %d, then %d)", pid, p)
	}
	dirs, _ := cgroupDirs(e.ctrs.layout.cgroupPath(ref))
	var mem string
	for _, dir := range dirs {
		for _, f := range []string{"memory.max", "memory.limit_in_bytes"} {
			if b, err := os.ReadFile(filepath.Join(dir, f)); err == nil {
				mem = strings.TrimSpace(string(b))
			}
		}
	}
	if mem != "100663296" {
		t.Errorf("memory limit after the update = %q, want 96 MiB", mem)
	}
}

func TestConformance(t *testing.T) {
	t.Parallel()
	needContainers(t)
	image := newTestRegistry(t)
	ref := image.push(t, "server", serverImage(t))
	var ids atomic.Uint64
	workloadtest.Run(t, workloadtest.Harness{
		New: func(t *testing.T) workload.Manager { return newNode(t).ctrs },
		Reopen: func(t *testing.T, m workload.Manager) workload.Manager {
			old := m.(*Manager)
			old.Close()
			m2, err := New(old.cfg)
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { m2.Close() })
			return m2
		},
		Valid: func(t *testing.T, name string) (workload.Deployment, spec.Workload) {
			return workload.Deployment{ID: ids.Add(1)}, containerWorkload(t, name, ref, nil)
		},
		Change: func(t *testing.T, w spec.Workload) spec.Workload {
			var c spec.ContainerConfig
			if err := w.DecodeConfig(&c); err != nil {
				t.Fatal(err)
			}
			c.Env = map[string]string{"GREETING": "changed"}
			if err := w.SetConfig(c); err != nil {
				t.Fatal(err)
			}
			return w
		},
		Invalid: func(t *testing.T, name string) spec.Workload {
			return containerWorkload(t, name, "127.0.0.1:1/app:latest", nil)
		},
		Timeout: 15 * time.Second,
	})
}

// TestExitWhileAgentDown: a container that dies while no agent watches is
// found dead by the next one and restarted per its policy.
func TestExitWhileAgentDown(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	w := containerWorkload(t, "orphan", e.ref, nil)
	d := e.deployment(11, w)
	if err := e.ctrs.Provision(ctx, d, w); err != nil {
		t.Fatal(err)
	}
	workloadtest.WaitReady(t, e.ctrs, d, "orphan", 15*time.Second)
	ref := workload.Ref{Deployment: 11, Name: "orphan"}
	pid := e.runcPid(t, e.ctrs, ref)
	e.ctrs.Close()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	m := e.open(t)
	defer m.Close()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		st, _ := m.runc.state(ctx, m.layout.id(ref))
		if st.Status != "running" {
			reap(pid) // as the previous agent's parent would: no zombie left behind
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the killed container still runs")
		}
	}
	if err := m.Provision(ctx, d, w); err != nil {
		t.Fatal(err)
	}
	// The status went to the previous agent (here: a stopped supervisor).
	st := waitEvent(t, m, d, "orphan", "restarted after an unknown exit status", workload.Ready, 10*time.Second)
	if p := e.runcPid(t, m, ref); p == pid || st.Restarts != 1 {
		t.Errorf("after the restart: pid %d (was %d), restarts %d", p, pid, st.Restarts)
	}
}

// TestNewSecretsAndEnvRestart: a new secret value restarts the container
// with it; a changed env replaces the container, keeping its address.
func TestNewSecretsAndEnvRestart(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	w := containerWorkload(t, "sec", e.ref, func(c *spec.ContainerConfig) {
		c.SecretEnv, c.Env = []string{"TOKEN"}, map[string]string{"DATA": "/tmp"}
	})
	d := e.deployment(12, w)
	if err := e.ctrs.Provision(ctx, d, w); err != nil {
		t.Fatal(err)
	}
	st := workloadtest.WaitReady(t, e.ctrs, d, "sec", 15*time.Second)
	url := "http://" + st.Addr + ":8080/"
	d.Secrets = workload.NewSecrets(map[string][]byte{"TOKEN": []byte("rotated")})
	if err := e.ctrs.Provision(ctx, d, w); err != nil {
		t.Fatal(err)
	}
	workloadtest.WaitReady(t, e.ctrs, d, "sec", 15*time.Second)
	if got := get(t, url); !strings.Contains(got, "token=rotated") {
		t.Fatalf("after a new secret GET / = %q", got)
	}
	w = containerWorkload(t, "sec", e.ref, func(c *spec.ContainerConfig) {
		c.SecretEnv, c.Env = []string{"TOKEN"}, map[string]string{"DATA": "/tmp", "GREETING": "v2"}
	})
	d.Generation = 2
	if err := e.ctrs.Update(ctx, d, w); err != nil {
		t.Fatal(err)
	}
	st2 := workloadtest.WaitReady(t, e.ctrs, d, "sec", 15*time.Second)
	if got := get(t, url); st2.Addr != st.Addr || !strings.HasPrefix(got, "hello v2 ") {
		t.Fatalf("after an env change: address %s (was %s), GET / = %q", st2.Addr, st.Addr, got)
	}
}

// TestOldContainerMovesIntoUserNamespace: a container an older agent ran
// without a user namespace (its record has no id range) is replaced, at
// the next Provision, by one in its deployment's user namespace, keeping
// its address.
func TestOldContainerMovesIntoUserNamespace(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	ctx := context.Background()
	w := containerWorkload(t, "old", e.ref, nil)
	d := e.deployment(13, w)
	if err := e.ctrs.Provision(ctx, d, w); err != nil {
		t.Fatal(err)
	}
	st := workloadtest.WaitReady(t, e.ctrs, d, "old", 15*time.Second)
	ref := workload.Ref{Deployment: 13, Name: "old"}
	pid := e.runcPid(t, e.ctrs, ref)
	e.ctrs.Close()
	rec, _, err := e.ctrs.layout.load(ref)
	if err != nil {
		t.Fatal(err)
	}
	rec.IDBase = 0
	if err := e.ctrs.layout.save(ref, rec); err != nil {
		t.Fatal(err)
	}
	if err := e.ctrs.ids.Release(13, "container/old"); err != nil {
		t.Fatal(err)
	}
	m := e.open(t)
	defer m.Close()
	if err := m.Provision(ctx, d, w); err != nil {
		t.Fatal(err)
	}
	st2 := waitEvent(t, m, d, "old", "moving the container into a user namespace", workload.Ready, 15*time.Second)
	rec, _, _ = m.layout.load(ref)
	if p := e.runcPid(t, m, ref); p == pid || rec.IDBase < idmap.Size || st2.Addr != st.Addr {
		t.Fatalf("after the move: pid %d (was %d), id range %d, address %s (was %s)", p, pid, rec.IDBase, st2.Addr, st.Addr)
	}
	b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/uid_map", e.runcPid(t, m, ref)))
	if f := strings.Fields(string(b)); len(f) != 3 || f[1] != fmt.Sprint(rec.IDBase) {
		t.Errorf("uid_map after the move: %q, want container root at %d", b, rec.IDBase)
	}
	get(t, "http://"+st2.Addr+":8080/probe")
}
