package spec

import (
	"fmt"
	"path"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Fields each workload type takes in YAML, besides name and type.
var (
	containerFields = []string{"image", "cpu", "memory", "entrypoint", "cmd", "env",
		"secret_env", "workdir", "ports", "mounts", "restart"}
	volumeFields = []string{"size"}
	mountFields  = []string{"volume", "path", "read_only"}
)

// supportedTypes are the workload types this version compiles; the other
// known types are reserved.
var supportedTypes = map[string][]string{
	TypeContainer:   containerFields,
	TypeVolume:      volumeFields,
	TypeGatewayName: gatewayFields,
	TypeNetwork:     {},
	TypeZDB:         zdbFields,
	TypeQSFS:        qsfsFields,
}

// ref is a name used somewhere in the spec, kept for cross-checks.
type ref struct {
	name string
	node *yaml.Node
	path string
}

// yWorkload is one compiled workload with what the cross-checks need.
type yWorkload struct {
	path      string
	node      *yaml.Node // the workload's mapping
	nameNode  *yaml.Node
	w         Workload
	mounts    []ref // volume names, from mounts[].volume
	secretEnv []ref
	gwBackend ref        // a gateway-name's backend, for crossCheck
	gwPort    *yaml.Node // and its port
}

// workloads compiles `workloads:`.
func (c *compiler) workloads(m fields, root *yaml.Node) []*yWorkload {
	p, ok := c.need(m, root, "", "workloads", "add a list of workloads, each with a name and a type")
	if !ok {
		return nil
	}
	items := c.list(p.val, "workloads")
	if len(items) == 0 && c.value(p.val) != nil && c.value(p.val).Kind == yaml.SequenceNode {
		c.errorf(p.key, "workloads", "empty: a spec needs at least one workload")
	}
	var ws []*yWorkload
	for i, item := range items {
		if i == MaxWorkloads {
			c.errorf(item, index("workloads", i), "too many workloads: a spec holds at most %d", MaxWorkloads)
			break
		}
		ws = append(ws, c.workload(item, index("workloads", i)))
	}
	return ws
}

// workload compiles one workload. A workload with a bad name or type (or
// that is not a mapping at all) comes back with that field empty, for
// crossCheck to skip.
func (c *compiler) workload(n *yaml.Node, wpath string) *yWorkload {
	w := &yWorkload{path: wpath, node: c.value(n)}
	m := c.mapping(n, wpath, "a workload: a mapping with name, type and the type's fields")
	if m == nil {
		return w
	}
	w.w.Name, w.nameNode = c.workloadName(m, w)
	w.w.Type = c.workloadType(m, w)
	switch w.w.Type {
	case TypeContainer:
		c.container(m, w)
	case TypeVolume:
		c.volume(m, w)
	case TypeGatewayName:
		c.gatewayName(m, w)
	case TypeNetwork:
		c.setConfig(w, NetworkConfig{})
	case TypeZDB:
		c.zdb(m, w)
	case TypeQSFS:
		c.qsfs(m, w)
	}
	return w
}

// workloadName reads and checks a workload's name.
func (c *compiler) workloadName(m fields, w *yWorkload) (string, *yaml.Node) {
	p, ok := c.need(m, w.node, w.path, "name", "every workload needs one, e.g. name: web")
	if !ok {
		return "", nil
	}
	s, ok := c.str(p.val, join(w.path, "name"))
	if ok && !nameRE.MatchString(s) {
		c.errorf(p.val, join(w.path, "name"), "%q is not a valid name: use 1-36 of a-z 0-9 _ -, starting with a letter or digit", s)
		return "", nil
	}
	return s, p.val
}

// workloadType reads a workload's type and checks its fields against it.
// It returns "" for a missing, unknown or unsupported type.
func (c *compiler) workloadType(m fields, w *yWorkload) string {
	want := "want container, volume, network, gateway-name, zdb or qsfs"
	p, ok := c.need(m, w.node, w.path, "type", want)
	if !ok {
		return ""
	}
	tpath := join(w.path, "type")
	t, ok := c.str(p.val, tpath)
	switch {
	case !ok:
		return ""
	case supportedTypes[t] != nil:
		c.allow(m, w.path, append([]string{"name", "type"}, supportedTypes[t]...), fieldOwner(t))
		return t
	case knownTypes[t]:
		c.errorf(p.val, tpath, "type %s is not supported yet: this version runs container, volume, network and gateway-name workloads", t)
	default:
		c.errorf(p.val, tpath, "unknown type %q: %s", t, want)
	}
	return ""
}

// fieldOwner explains a field that belongs to a workload type other than t.
func fieldOwner(t string) func(string) string {
	return func(k string) string {
		var owners []string
		for _, other := range AllTypes {
			if other != t && slices.Contains(supportedTypes[other], k) {
				owners = append(owners, other)
			}
		}
		if len(owners) == 0 {
			return ""
		}
		return fmt.Sprintf("%s is a field of %s workloads, not %s", k, strings.Join(owners, " and "), t)
	}
}

// volume compiles a volume workload: its size is its disk reservation.
func (c *compiler) volume(m fields, w *yWorkload) {
	if p, ok := c.need(m, w.node, w.path, "size", "a volume needs a size, e.g. size: 1GiB"); ok {
		w.w.Resources.Disk = c.quantity(p.val, join(w.path, "size"), "a size such as 1GiB", ParseSize)
	}
	c.setConfig(w, VolumeConfig{})
}

// container compiles a container workload: cpu and memory are its
// resources, the rest its ContainerConfig.
func (c *compiler) container(m fields, w *yWorkload) {
	var cfg ContainerConfig
	if p, ok := c.need(m, w.node, w.path, "image", "a container needs an image pinned by digest, e.g. image: HOST/REPO@sha256:<64 hex>"); ok {
		cfg.Image = c.image(p.val, join(w.path, "image"))
	}
	if p, ok := c.need(m, w.node, w.path, "cpu", "a container needs a CPU limit, e.g. cpu: 500m or cpu: 1"); ok {
		w.w.Resources.CPU = c.quantity(p.val, join(w.path, "cpu"), "an amount of CPU such as 500m or 1", ParseCPU)
	}
	if p, ok := c.need(m, w.node, w.path, "memory", "a container needs a memory limit, e.g. memory: 64MiB"); ok {
		w.w.Resources.Memory = c.quantity(p.val, join(w.path, "memory"), "a size such as 64MiB", ParseSize)
	}
	c.process(m, w, &cfg)
	c.exposure(m, w, &cfg)
	c.setConfig(w, cfg)
}

// process reads what the container runs: entrypoint, cmd, env, workdir
// and restart policy.
func (c *compiler) process(m fields, w *yWorkload, cfg *ContainerConfig) {
	if p, ok := m["entrypoint"]; ok {
		cfg.Entrypoint, _ = c.strList(p.val, join(w.path, "entrypoint"))
	}
	if p, ok := m["cmd"]; ok {
		cfg.Cmd, _ = c.strList(p.val, join(w.path, "cmd"))
	}
	if p, ok := m["env"]; ok {
		cfg.Env = c.env(p.val, join(w.path, "env"))
	}
	if p, ok := m["workdir"]; ok {
		cfg.Workdir, _ = c.absPath(p.val, join(w.path, "workdir"), true)
	}
	cfg.Restart = RestartAlways
	if p, ok := m["restart"]; ok {
		rpath := join(w.path, "restart")
		s, ok := c.str(p.val, rpath)
		switch {
		case !ok:
		case s == RestartAlways || s == RestartOnFailure || s == RestartNever:
			cfg.Restart = s
		default:
			c.errorf(p.val, rpath, "unknown restart policy %q: want always, on-failure or never", s)
		}
	}
}

// exposure reads what the container is given: secrets, ports and mounts.
func (c *compiler) exposure(m fields, w *yWorkload, cfg *ContainerConfig) {
	if p, ok := m["secret_env"]; ok {
		cfg.SecretEnv = c.secretEnv(p.val, w)
		c.overlap(cfg, w)
	}
	if p, ok := m["ports"]; ok {
		cfg.Ports = c.ports(p.val, join(w.path, "ports"))
	}
	if p, ok := m["mounts"]; ok {
		cfg.Mounts = c.mounts(p.val, w)
	}
}

// secretEnv reads the names of the secrets a container gets, noting them
// for crossCheck.
func (c *compiler) secretEnv(n *yaml.Node, w *yWorkload) []string {
	spath := join(w.path, "secret_env")
	var names []string
	seen := make(map[string]string)
	for i, item := range c.list(n, spath) {
		ipath := index(spath, i)
		s, ok := c.str(item, ipath)
		switch {
		case !ok:
		case !envNameRE.MatchString(s):
			c.errorf(c.value(item), ipath, "%q is not a valid secret name: use letters, digits and _, not starting with a digit", s)
		case seen[s] != "":
			c.errorf(c.value(item), ipath, "%s is already listed at %s", s, seen[s])
		default:
			seen[s] = ipath
			names = append(names, s)
			w.secretEnv = append(w.secretEnv, ref{s, c.value(item), ipath})
		}
	}
	return names
}

// overlap reports a variable set both in env and from a secret.
func (c *compiler) overlap(cfg *ContainerConfig, w *yWorkload) {
	for _, r := range w.secretEnv {
		if _, ok := cfg.Env[r.name]; ok {
			c.errorf(r.node, r.path, "%s is also set in env: a variable comes from env or from a secret, not both", r.name)
		}
	}
}

// setConfig encodes cfg as the workload's canonical config.
func (c *compiler) setConfig(w *yWorkload, cfg any) {
	if err := w.w.SetConfig(cfg); err != nil {
		c.errorf(w.node, w.path, "encode config: %v", err)
	}
}

// quantity reads a cpu amount or size with parse, which must be positive.
func (c *compiler) quantity(n *yaml.Node, qpath, want string, parse func(string) (uint64, error)) uint64 {
	s, ok := c.scalar(n, qpath, want)
	if !ok {
		return 0
	}
	v, err := parse(s)
	if err != nil {
		c.errorf(c.value(n), qpath, "%v", err)
		return 0
	}
	return v
}

// image reads an image reference and returns it pinned by digest: as
// written, or as the parser's ResolveImage pins a reference without a
// digest.
func (c *compiler) image(n *yaml.Node, ipath string) string {
	s, ok := c.str(n, ipath)
	if !ok || ValidImageRef(s) {
		return s
	}
	if c.pin != nil && !strings.Contains(s, "@") {
		pinned, err := c.pin(s)
		switch {
		case err != nil:
			c.errorf(c.value(n), ipath, "%q: %v", s, err)
		case !ValidImageRef(pinned):
			c.errorf(c.value(n), ipath, "%q resolved to %q, which is not pinned by digest", s, pinned)
		}
		return pinned
	}
	c.errorf(c.value(n), ipath, "%s", imageProblem(s))
	return s
}

// imageProblem says what is wrong with an image reference that is not
// HOST[:PORT]/REPO@sha256:<64 hex> and that no resolver pinned.
func imageProblem(ref string) string {
	const want = "use HOST/REPO@sha256:<64 hex> (zgrid image push prints one)"
	name, digest, pinned := strings.Cut(ref, "@")
	switch {
	case !pinned:
		return fmt.Sprintf("%q is not pinned by digest: %s, or name a tag in a hub (REPO:TAG) and give zgrid deploy the hub (--hub URL, or --grid FILE)", ref, want)
	case !strings.HasPrefix(digest, "sha256:") || !isLowerHex(digest[len("sha256:"):], 64):
		return fmt.Sprintf("%q has a malformed digest: want sha256: and 64 lowercase hex digits", ref)
	case !strings.Contains(name, "/"):
		return fmt.Sprintf("%q names no registry: %s", ref, want)
	case strings.Contains(name[strings.LastIndex(name, "/"):], ":"):
		return fmt.Sprintf("%q has both a tag and a digest: drop the tag", ref)
	}
	return fmt.Sprintf("%q is malformed: registry and repository are lowercase letters, digits and . _ - /; %s", ref, want)
}

func isLowerHex(s string, n int) bool {
	if len(s) != n {
		return false
	}
	for _, r := range s {
		if !('0' <= r && r <= '9' || 'a' <= r && r <= 'f') {
			return false
		}
	}
	return true
}

// absPath reads an absolute path without "..", cleaned. root says whether
// "/" itself is allowed.
func (c *compiler) absPath(n *yaml.Node, ppath string, root bool) (string, bool) {
	s, ok := c.str(n, ppath)
	if !ok {
		return "", false
	}
	var why string
	switch {
	case !strings.HasPrefix(s, "/"):
		why = "is not an absolute path: start it with /"
	case slices.Contains(strings.Split(s, "/"), ".."):
		why = `contains "..": write the path it means`
	case strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		why = "contains a control character"
	case !root && path.Clean(s) == "/":
		why = "would hide the container's whole root file system: mount below /"
	}
	if why != "" {
		c.errorf(c.value(n), ppath, "%q %s", s, why)
		return "", false
	}
	return path.Clean(s), true
}
