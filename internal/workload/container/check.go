package container

import (
	"path"
	"strconv"
	"strings"

	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
)

// minMemory is the smallest memory limit a container may ask for: below
// it runc's own setup inside the cgroup fails.
const minMemory = 4 << 20

// check validates a container workload against what this manager can run.
// Every failure is permanent: only a new spec can fix it.
func (m *Manager) check(d workload.Deployment, w spec.Workload) (*spec.ContainerConfig, error) {
	if err := workload.CheckName(w.Name); err != nil {
		return nil, err
	}
	if w.Type != spec.TypeContainer {
		return nil, workload.Permanent(workload.ErrWrongType, "workload %s is a %q, not a container", w.Name, w.Type)
	}
	var c spec.ContainerConfig
	if err := w.DecodeConfig(&c); err != nil {
		return nil, workload.Permanent(workload.ErrInvalid, "%v", err)
	}
	for _, f := range []func(string, *spec.ContainerConfig, spec.Resources) string{checkImage, checkResources, checkMounts, checkEnv} {
		if why := f(w.Name, &c, w.Resources); why != "" {
			return nil, workload.Permanent(workload.ErrInvalid, "container %s: %s", w.Name, why)
		}
	}
	for _, s := range c.SecretEnv {
		if _, ok := d.Secrets.Get(s); !ok {
			return nil, workload.Permanent(workload.ErrInvalid, "container %s: secret_env names %q, which is not among the deployment's secrets", w.Name, s)
		}
	}
	return &c, nil
}

func checkImage(_ string, c *spec.ContainerConfig, _ spec.Resources) string {
	switch {
	case !spec.ValidImageRef(c.Image):
		return "image " + strconv.Quote(c.Image) + " is not HOST[:PORT]/REPO@sha256:<64 hex>"
	case c.Restart != "" && c.Restart != spec.RestartAlways && c.Restart != spec.RestartOnFailure && c.Restart != spec.RestartNever:
		return "restart " + strconv.Quote(c.Restart) + ": want always, on-failure or never"
	case c.Workdir != "" && !path.IsAbs(c.Workdir):
		return "workdir " + strconv.Quote(c.Workdir) + " is not an absolute path"
	}
	for _, p := range c.Ports {
		if p == 0 {
			return "port 0 is not a port"
		}
	}
	return ""
}

func checkResources(_ string, _ *spec.ContainerConfig, r spec.Resources) string {
	switch {
	case r.CPU == 0:
		return "resources.cpu is 0: a container needs a CPU share (in thousandths of a core)"
	case r.Memory < minMemory:
		return "resources.memory is below 4 MiB"
	}
	return ""
}

func checkMounts(_ string, c *spec.ContainerConfig, _ spec.Resources) string {
	seen := map[string]bool{}
	for _, mt := range c.Mounts {
		p := mt.Path
		switch {
		case !path.IsAbs(p) || path.Clean(p) != p || p == "/":
			return "mount path " + strconv.Quote(p) + " is not a clean absolute path below /"
		case under(p, "/proc") || under(p, "/sys") || under(p, "/dev") || p == "/etc/hosts":
			return "mount path " + strconv.Quote(p) + " is reserved for the runtime"
		case seen[p]:
			return "two mounts at " + strconv.Quote(p)
		}
		seen[p] = true
	}
	return ""
}

func checkEnv(_ string, c *spec.ContainerConfig, _ spec.Resources) string {
	for k, v := range c.Env {
		if k == "" || strings.ContainsAny(k, "=\x00") || strings.ContainsRune(v, 0) {
			return "env " + strconv.Quote(k) + ": names may not be empty or contain '=' or NUL, values may not contain NUL"
		}
	}
	return ""
}

func under(p, dir string) bool { return p == dir || strings.HasPrefix(p, dir+"/") }
