package workload_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/eventlog"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
	"github.com/zerogrid/zerogrid/internal/workload/workloadtest"
)

const testImage = "hub.example:5000/app@sha256:0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef"

var nextID atomic.Uint64

func container(t *testing.T, name, image string, mounts ...spec.Mount) spec.Workload {
	t.Helper()
	w := spec.Workload{Name: name, Type: spec.TypeContainer, Resources: spec.Resources{CPU: 100, Memory: 32 << 20}}
	if err := w.SetConfig(spec.ContainerConfig{Image: image, Mounts: mounts}); err != nil {
		t.Fatal(err)
	}
	return w
}

func TestInmemConformance(t *testing.T) {
	t.Parallel()
	workloadtest.Run(t, workloadtest.Harness{
		New: func(t *testing.T) workload.Manager {
			return workload.NewInmem(spec.TypeContainer, workload.SystemClock{})
		},
		Reopen: func(t *testing.T, m workload.Manager) workload.Manager {
			return m.(*workload.Inmem).Restart()
		},
		Valid: func(t *testing.T, name string) (workload.Deployment, spec.Workload) {
			return workload.Deployment{ID: nextID.Add(1), Generation: 1, Owner: 7}, container(t, name, testImage)
		},
		Change: func(t *testing.T, w spec.Workload) spec.Workload {
			w.Resources.CPU *= 2
			return w
		},
		Invalid: func(t *testing.T, name string) spec.Workload {
			return container(t, name, "hub.example:5000/app:latest")
		},
		Timeout: time.Second,
	})
}

func TestInmemHooks(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	m := workload.NewInmem(spec.TypeContainer, workload.SystemClock{})
	d := workload.Deployment{ID: 1}
	w := container(t, "web", testImage)
	ref := workload.Ref{Deployment: 1, Name: "web"}
	boom := workload.Retryable(errors.New("registry down"), "pull: registry down")
	m.Fail(ref, boom)
	if err := m.Provision(ctx, d, w); !errors.Is(err, boom) || workload.IsPermanent(err) {
		t.Fatalf("Provision with an injected fault = %v", err)
	}
	if err := m.Provision(ctx, d, w); err != nil {
		t.Fatal(err)
	}
	if err := m.Crash(ref, 137); err != nil {
		t.Fatal(err)
	}
	st, err := m.Observe(ctx, d, "web")
	if err != nil {
		t.Fatal(err)
	}
	if st.Restarts != 1 || len(st.Events) != 2 || st.Events[1].Kind != eventlog.KindRestarted ||
		st.Events[1].Reason != "restarted after exit code 137" {
		t.Fatalf("status after a crash = %+v", st)
	}
	if st, _ := m.Observe(ctx, d, "web"); len(st.Events) != 0 {
		t.Errorf("events were not drained: %v", st.Events)
	}
	m2 := m.Restart()
	if err := m2.Provision(ctx, d, w); err != nil {
		t.Fatal(err)
	}
	if c := m2.Counts(ref); c != (workload.Counts{Creates: 1}) {
		t.Errorf("counts after a restart and re-provision = %+v, want one create", c)
	}
	if st, _ := m2.Observe(ctx, d, "web"); st.Restarts != 1 {
		t.Errorf("restarts lost across Restart: %+v", st)
	}
}

func TestSiblings(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	vols := workload.NewInmem(spec.TypeVolume, workload.SystemClock{})
	ctrs := workload.NewInmem(spec.TypeContainer, workload.SystemClock{})
	managers := map[string]workload.Manager{spec.TypeVolume: vols, spec.TypeContainer: ctrs}
	vol := spec.Workload{Name: "data", Type: spec.TypeVolume, Resources: spec.Resources{Disk: 1 << 20}}
	ctr := container(t, "web", testImage, spec.Mount{Volume: "data", Path: "/data"})
	s := &spec.Spec{Version: spec.Version, Workloads: []spec.Workload{vol, ctr}}
	d := workload.Deployment{ID: 9}
	d.Siblings = workload.NewSiblings(d, s, managers)

	err := ctrs.Provision(ctx, d, ctr)
	if !errors.Is(err, workload.ErrDependency) || workload.IsPermanent(err) {
		t.Fatalf("container before its volume = %v, want retryable ErrDependency", err)
	}
	if err := vols.Provision(ctx, d, vol); err != nil {
		t.Fatal(err)
	}
	if err := ctrs.Provision(ctx, d, ctr); err != nil {
		t.Fatalf("container after its volume: %v", err)
	}
	for _, tc := range []struct{ name, want string }{{"nope", "no workload"}, {"web", "cannot be mounted"}} {
		_, err := d.Siblings.HostPath(ctx, tc.name)
		if !workload.IsPermanent(err) || !strings.Contains(workload.Reason(err), tc.want) {
			t.Errorf("HostPath(%s) = %v, want a permanent error saying %q", tc.name, err, tc.want)
		}
	}
}

func TestSecretsNeverPrint(t *testing.T) {
	t.Parallel()
	s := workload.NewSecrets(map[string][]byte{"TOKEN": []byte("hunter2")})
	for _, out := range []string{fmt.Sprint(s), fmt.Sprintf("%v %+v %#v %s", s, s, s, s), fmt.Sprint(s.LogValue())} {
		if strings.Contains(out, "hunter2") {
			t.Fatalf("secret value printed: %s", out)
		}
	}
	v, ok := s.Get("TOKEN")
	if !ok || string(v) != "hunter2" {
		t.Fatalf("Get = %q, %v", v, ok)
	}
	v[0] = 'X'
	if v2, _ := s.Get("TOKEN"); string(v2) != "hunter2" {
		t.Error("Get returned an alias of the stored value")
	}
}

func TestErrorsAndReasons(t *testing.T) {
	t.Parallel()
	p := workload.Permanent(workload.ErrInvalid, "image %s: digest mismatch", "x")
	wrapped := fmt.Errorf("provision web: %w", p)
	if !workload.IsPermanent(wrapped) || !errors.Is(wrapped, workload.ErrInvalid) {
		t.Error("a wrapped permanent error lost its class")
	}
	if got := workload.Reason(wrapped); got != "image x: digest mismatch" {
		t.Errorf("Reason = %q", got)
	}
	if workload.IsPermanent(context.Canceled) || workload.IsPermanent(workload.Retryable(workload.ErrDependency, "later")) {
		t.Error("a cancellation or retryable error counted as permanent")
	}
	long := workload.Reason(errors.New(strings.Repeat("é", 400)))
	if len(long) > workload.MaxReason || !strings.HasPrefix(strings.Repeat("é", 400), long) {
		t.Errorf("Reason truncation: %d bytes, valid prefix %v", len(long), strings.HasPrefix(strings.Repeat("é", 400), long))
	}
}

func TestEventQueueDrops(t *testing.T) {
	t.Parallel()
	var q workload.EventQueue
	now := time.Unix(0, 0)
	for i := range workload.MaxPendingEvents + 5 {
		q.Add(now, eventlog.KindRestarted, fmt.Sprint(i))
	}
	ev := q.Drain()
	if len(ev) != workload.MaxPendingEvents+1 || !strings.Contains(ev[0].Reason, "5 older events") || ev[1].Reason != "5" {
		t.Fatalf("drained %d events, first %+v", len(ev), ev[:2])
	}
	if len(q.Drain()) != 0 {
		t.Error("queue not empty after Drain")
	}
}
