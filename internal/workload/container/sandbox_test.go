package container

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
	"github.com/zerogrid/zerogrid/internal/workload/idmap"
)

func TestRuntimeSpecProfile(t *testing.T) {
	t.Parallel()
	s := runtimeSpec(sandbox{Hostname: "web", Rootfs: "/r", Args: []string{"/srv"}, CPU: 250, Memory: 64 << 20,
		Netns: "/run/netns/zg-x-0", Userns: "/run/x/userns/0", IDs: idmap.Range{Base: 1 << 28},
		Cgroup: "/zerogrid/x/1-web", Hosts: "/h", NoFile: 1024,
		Volumes: []volumeMount{{Source: "/v", Dest: "/data", ReadOnly: true}}})
	if !s.Root.Readonly || !s.Process.NoNewPrivileges || s.Process.Terminal {
		t.Error("root must be read-only, no_new_privs set, no terminal")
	}
	for _, c := range []string{"CAP_SYS_ADMIN", "CAP_NET_RAW", "CAP_NET_ADMIN", "CAP_MKNOD", "CAP_SYS_PTRACE", "CAP_SYS_MODULE"} {
		if slices.Contains(s.Process.Capabilities.Bounding, c) {
			t.Errorf("%s is kept", c)
		}
	}
	if len(s.Process.Capabilities.Ambient) != 0 || len(s.Process.Capabilities.Inheritable) != 0 {
		t.Error("ambient or inheritable capabilities set")
	}
	ns := map[specs.LinuxNamespaceType]string{}
	for _, n := range s.Linux.Namespaces {
		ns[n.Type] = n.Path
	}
	for _, typ := range []specs.LinuxNamespaceType{specs.PIDNamespace, specs.MountNamespace, specs.IPCNamespace, specs.UTSNamespace, specs.CgroupNamespace} {
		if p, ok := ns[typ]; !ok || p != "" {
			t.Errorf("namespace %s: present %v, path %q; want a new one", typ, ok, p)
		}
	}
	if ns[specs.NetworkNamespace] != "/run/netns/zg-x-0" {
		t.Errorf("network namespace %q", ns[specs.NetworkNamespace])
	}
	if ns[specs.UserNamespace] != "/run/x/userns/0" {
		t.Errorf("user namespace %q, want the slot's", ns[specs.UserNamespace])
	}
	want := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1 << 28, Size: idmap.Size}}
	if !slices.Equal(s.Linux.UIDMappings, want) || !slices.Equal(s.Linux.GIDMappings, want) {
		t.Errorf("id mappings %v %v, want %v", s.Linux.UIDMappings, s.Linux.GIDMappings, want)
	}
	r := s.Linux.Resources
	if *r.CPU.Quota != 25_000 || *r.CPU.Period != 100_000 || *r.Memory.Limit != 64<<20 || *r.Memory.Swap != 64<<20 || *r.Pids.Limit != pidsLimit {
		t.Errorf("resources %+v %+v %+v", *r.CPU, *r.Memory, *r.Pids)
	}
	if s.Linux.Seccomp == nil || !slices.Contains(s.Linux.Seccomp.Syscalls[0].Names, "keyctl") {
		t.Error("no seccomp deny list")
	}
	last := s.Mounts[len(s.Mounts)-1]
	if last.Destination != "/data" || last.Source != "/v" || !slices.Contains(last.Options, "ro") || !slices.Contains(last.Options, "nodev") {
		t.Errorf("volume mount %+v", last)
	}
	if q := *resources(1, 1<<20).CPU.Quota; q != minCPUQuota {
		t.Errorf("1 millicore gives quota %d, want the kernel minimum %d", q, minCPUQuota)
	}
}

func TestResolveProcess(t *testing.T) {
	t.Parallel()
	img := &v1.Config{Entrypoint: []string{"/ep"}, Cmd: []string{"--img"}, Env: []string{"A=img", "B=img"}, WorkingDir: "/w"}
	for _, tc := range []struct {
		name string
		c    spec.ContainerConfig
		args []string
		env  []string
		cwd  string
	}{
		{"image defaults", spec.ContainerConfig{}, []string{"/ep", "--img"}, []string{defaultPath, "A=img", "B=img", "S=sec"}, "/w"},
		{"cmd only", spec.ContainerConfig{Cmd: []string{"--spec"}}, []string{"/ep", "--spec"}, nil, "/w"},
		{"entrypoint drops image cmd", spec.ContainerConfig{Entrypoint: []string{"/other"}}, []string{"/other"}, nil, "/w"},
		{"env overrides", spec.ContainerConfig{Env: map[string]string{"B": "spec", "PATH": "/x", "C": "spec"}, Workdir: "/s"},
			[]string{"/ep", "--img"}, []string{"A=img", "B=spec", "C=spec", "PATH=/x", "S=sec"}, "/s"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p, err := resolveProcess(&tc.c, img, map[string]string{"S": "sec"})
			if err != nil {
				t.Fatal(err)
			}
			if !slices.Equal(p.Args, tc.args) || (tc.env != nil && !slices.Equal(p.Env, tc.env)) || p.Cwd != tc.cwd {
				t.Errorf("got args %q env %q cwd %q", p.Args, p.Env, p.Cwd)
			}
		})
	}
	if _, err := resolveProcess(&spec.ContainerConfig{}, &v1.Config{}, nil); !workload.IsPermanent(err) {
		t.Errorf("no command at all: %v, want a permanent error", err)
	}
}

func TestResolveUser(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.MkdirAll(filepath.Join(dir, "etc"), 0o755)
	os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte("root:x:0:0::/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "etc/group"), []byte("root:x:0:\nstaff:x:50:\n"), 0o644)
	root, err := os.OpenRoot(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer root.Close()
	for user, want := range map[string][2]uint32{"": {0, 0}, "app": {1000, 1001}, "1000": {1000, 1001}, "app:staff": {1000, 50}, "4242": {4242, 0}, "4242:7": {4242, 7}} {
		uid, gid, err := resolveUser(root, user)
		if err != nil || [2]uint32{uid, gid} != want {
			t.Errorf("user %q = %d:%d, %v; want %v", user, uid, gid, err, want)
		}
	}
	if _, _, err := resolveUser(root, "nobody"); !workload.IsPermanent(err) || !strings.Contains(err.Error(), "nobody") {
		t.Errorf("unknown user name: %v", err)
	}
}

func TestCheckRefuses(t *testing.T) {
	t.Parallel()
	m := &Manager{}
	good := spec.ContainerConfig{Image: "h:1/r@sha256:" + strings.Repeat("a", 64)}
	for name, edit := range map[string]func(*spec.ContainerConfig, *spec.Resources){
		"tag":         func(c *spec.ContainerConfig, _ *spec.Resources) { c.Image = "h:1/r:latest" },
		"policy":      func(c *spec.ContainerConfig, _ *spec.Resources) { c.Restart = "sometimes" },
		"no cpu":      func(_ *spec.ContainerConfig, r *spec.Resources) { r.CPU = 0 },
		"tiny memory": func(_ *spec.ContainerConfig, r *spec.Resources) { r.Memory = 1 << 20 },
		"mount /proc": func(c *spec.ContainerConfig, _ *spec.Resources) {
			c.Mounts = []spec.Mount{{Volume: "v", Path: "/proc/x"}}
		},
		"mount rel": func(c *spec.ContainerConfig, _ *spec.Resources) {
			c.Mounts = []spec.Mount{{Volume: "v", Path: "data/../x"}}
		},
		"env =":  func(c *spec.ContainerConfig, _ *spec.Resources) { c.Env = map[string]string{"A=B": "x"} },
		"secret": func(c *spec.ContainerConfig, _ *spec.Resources) { c.SecretEnv = []string{"MISSING"} },
	} {
		c, r := good, spec.Resources{CPU: 100, Memory: 64 << 20}
		edit(&c, &r)
		w := spec.Workload{Name: "w", Type: spec.TypeContainer, Resources: r}
		if err := w.SetConfig(c); err != nil {
			t.Fatal(err)
		}
		if _, err := m.check(workload.Deployment{}, w); !workload.IsPermanent(err) {
			t.Errorf("%s: check = %v, want a permanent error", name, err)
		}
	}
}
