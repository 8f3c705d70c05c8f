package spec

import (
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"
)

// env reads a container's environment: variable names to values.
func (c *compiler) env(n *yaml.Node, epath string) map[string]string {
	m := c.mapping(n, epath, "a mapping from variable names to values")
	if len(m) == 0 {
		return nil
	}
	env := make(map[string]string, len(m))
	for k, p := range m {
		vpath := join(epath, k)
		if !envNameRE.MatchString(k) {
			c.errorf(p.key, vpath, "%q is not a valid variable name: use letters, digits and _, not starting with a digit", k)
			continue
		}
		v, ok := c.str(p.val, vpath)
		if ok && strings.ContainsRune(v, 0) {
			c.errorf(c.value(p.val), vpath, "contains a NUL byte")
		}
		env[k] = v
	}
	return env
}

// ports reads the TCP ports a container listens on.
func (c *compiler) ports(n *yaml.Node, ppath string) []uint16 {
	var ports []uint16
	seen := make(map[int64]int)
	for i, item := range c.list(n, ppath) {
		p, ok := c.integer(item, index(ppath, i), 1, 65535)
		if !ok {
			continue
		}
		if j, dup := seen[p]; dup {
			c.errorf(c.value(item), index(ppath, i), "port %d is already listed at %s", p, index(ppath, j))
			continue
		}
		seen[p] = i
		ports = append(ports, uint16(p))
	}
	return ports
}

// mounts reads a container's volume mounts, noting the volumes named for
// crossCheck.
func (c *compiler) mounts(n *yaml.Node, w *yWorkload) []Mount {
	mpath := join(w.path, "mounts")
	var out []Mount
	at := make(map[string]string)
	for i, item := range c.list(n, mpath) {
		ipath := index(mpath, i)
		mt, pathNode := c.mount(item, ipath, w)
		if pathNode == nil {
			continue
		}
		if prev, dup := at[mt.Path]; dup {
			c.errorf(pathNode, join(ipath, "path"), "%s is already mounted by %s", mt.Path, prev)
		}
		at[mt.Path] = ipath
		out = append(out, mt)
	}
	return out
}

// mount reads one mount. It returns the node of its path, or nil if the
// mount is unusable.
func (c *compiler) mount(item *yaml.Node, ipath string, w *yWorkload) (Mount, *yaml.Node) {
	var mt Mount
	m := c.mapping(item, ipath, "a mount: {volume: NAME, path: /PATH}")
	if m == nil {
		return mt, nil
	}
	c.allow(m, ipath, mountFields, nil)
	if p, ok := c.need(m, c.value(item), ipath, "volume", "name the volume workload to mount"); ok {
		if s, ok := c.str(p.val, join(ipath, "volume")); ok {
			mt.Volume = s
			w.mounts = append(w.mounts, ref{s, c.value(p.val), join(ipath, "volume")})
		}
	}
	if p, ok := m["read_only"]; ok {
		mt.ReadOnly, _ = c.boolean(p.val, join(ipath, "read_only"))
	}
	p, ok := c.need(m, c.value(item), ipath, "path", "say where it appears, e.g. path: /data")
	if !ok {
		return mt, nil
	}
	if mt.Path, ok = c.absPath(p.val, join(ipath, "path"), false); !ok {
		return mt, nil
	}
	return mt, c.value(p.val)
}

// crossCheck checks what the workloads name: unique names, mounted volumes
// that exist, secrets that exist. If every workload could be read, it also
// checks that every volume is mounted and every secret used; otherwise the
// workload that could not be read may be the one that does.
func (c *compiler) crossCheck(ws []*yWorkload, secrets secretSet) {
	byName := make(map[string]*yWorkload, len(ws))
	for _, w := range ws {
		if w.w.Name == "" {
			continue
		}
		if first, dup := byName[w.w.Name]; dup {
			c.errorf(w.nameNode, join(w.path, "name"), "%q is already the name of %s (line %d)", w.w.Name, first.path, first.nameNode.Line)
			continue
		}
		byName[w.w.Name] = w
	}
	mounted := make(map[string]bool)
	for _, w := range ws {
		if w.gwBackend.node != nil {
			c.checkGatewayBackend(w, byName[w.gwBackend.name])
		}
		for _, r := range w.mounts {
			c.checkMount(r, byName[r.name])
			mounted[r.name] = true
		}
		for _, r := range w.secretEnv {
			if s := secrets[r.name]; s != nil {
				s.used = true
			} else {
				c.errorf(r.node, r.path, "secret %q is not defined: add it under secrets:, e.g. %s: {env: %s}", r.name, r.name, r.name)
			}
		}
	}
	for _, w := range ws {
		if w.w.Type == "" {
			return
		}
	}
	for _, w := range ws {
		if w.w.Type == TypeVolume && w.w.Name != "" && !mounted[w.w.Name] {
			c.errorf(w.node, w.path, "volume %q is mounted by no container: add {volume: %s, path: /PATH} to a container's mounts, or remove it", w.w.Name, w.w.Name)
		}
	}
	for name, s := range secrets {
		if !s.used && envNameRE.MatchString(name) {
			c.errorf(s.key, join("secrets", name), "secret %s is used by no workload: list it in a container's secret_env (or name it as a zdb's password or a qsfs's secret), or remove it", name)
		}
	}
}

// checkMount checks that a mount names a volume workload of the spec.
func (c *compiler) checkMount(r ref, target *yWorkload) {
	switch {
	case target != nil && target.w.Type == "":
		// Its type is wrong or missing, which is reported already.
	case target == nil && !nameRE.MatchString(r.name):
		c.errorf(r.node, r.path, "no volume named %q in this spec: volume names are 1-36 of a-z 0-9 _ -", r.name)
	case target == nil:
		c.errorf(r.node, r.path, "no volume named %q in this spec: add a workload {name: %s, type: volume, size: ...}", r.name, r.name)
	case target.w.Type != TypeVolume && target.w.Type != TypeQSFS:
		c.errorf(r.node, r.path, "%q is a %s, not a volume or qsfs (%s, line %d)", r.name, target.w.Type, target.path, target.nameNode.Line)
	}
}

// validatePrefixRE matches how Spec.Validate names a workload, which the
// YAML error's path already does.
var validatePrefixRE = regexp.MustCompile(`^workloads\[\d+\](?: \([^)]*\))?:? *`)

// checkCanonical runs the canonical spec's own checks and places their
// errors: each workload's at its line, the spec's at workloads:. The YAML
// checks above cover the same ground, so this is a backstop that keeps
// the two in step.
func (c *compiler) checkCanonical(s *Spec, ws []*yWorkload, at *yaml.Node) {
	for i, w := range ws {
		one := Spec{Version: s.Version, Workloads: s.Workloads[i : i+1]}
		if err := one.validate(false); err != nil {
			c.errorf(w.node, w.path, "%s", canonicalMsg(err))
		}
	}
	if len(c.errs) > 0 {
		return
	}
	if _, err := s.Encode(); err != nil {
		c.errorf(at, "workloads", "%s", canonicalMsg(err))
	}
}

// canonicalMsg strips what the YAML error says already from a Validate
// error.
func canonicalMsg(err error) string {
	msg := strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": ")
	return validatePrefixRE.ReplaceAllString(msg, "")
}
