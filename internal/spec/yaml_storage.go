package spec

import (
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// Fields of zdb and qsfs workloads in YAML, besides name and type.
var (
	zdbFields  = []string{"size", "password", "mode"}
	qsfsFields = []string{"k", "m", "backends", "secret", "password"}
)

// zdb compiles a zdb workload: its size is its disk reservation and the
// namespace's limit on bytes on disk.
func (c *compiler) zdb(m fields, w *yWorkload) {
	var z ZDBConfig
	if p, ok := c.need(m, w.node, w.path, "size", "a zdb needs a size, e.g. size: 10GiB (its limit on bytes on disk)"); ok {
		w.w.Resources.Disk = c.quantity(p.val, join(w.path, "size"), "a size such as 10GiB", ParseSize)
	}
	if p, ok := c.need(m, w.node, w.path, "password", "a zdb namespace is private: name the secret holding its password, e.g. password: ZDB_PASSWORD (and define it under secrets:)"); ok {
		z.Password = c.secretRef(p.val, w, join(w.path, "password"))
	}
	if p, ok := m["mode"]; ok {
		mpath := join(w.path, "mode")
		if s, ok := c.str(p.val, mpath); ok {
			if s != ZDBModeUser && s != ZDBModeSeq {
				c.errorf(c.value(p.val), mpath, "unknown mode %q: want user (clients choose keys) or seq (the server numbers them)", s)
			}
			z.Mode = s
		}
	}
	c.setConfig(w, z)
}

// qsfs compiles a qsfs workload.
func (c *compiler) qsfs(m fields, w *yWorkload) {
	var q QSFSConfig
	if p, ok := c.need(m, w.node, w.path, "k", "how many shards rebuild a segment, e.g. k: 4"); ok {
		k, _ := c.integer(p.val, join(w.path, "k"), 1, MaxQSFSBackends)
		q.K = int(k)
	}
	if p, ok := c.need(m, w.node, w.path, "m", "how many backends may be lost, e.g. m: 2"); ok {
		k, _ := c.integer(p.val, join(w.path, "m"), 0, MaxQSFSBackends-1)
		q.M = int(k)
	}
	if p, ok := c.need(m, w.node, w.path, "secret", "name the secret holding the store's mnemonic, e.g. secret: STORE_MNEMONIC"); ok {
		q.Secret = c.secretRef(p.val, w, join(w.path, "secret"))
	}
	if p, ok := c.need(m, w.node, w.path, "password", "name the secret holding the backends' password (their zdb workloads' password), e.g. password: ZDB_PASSWORD"); ok {
		q.Password = c.secretRef(p.val, w, join(w.path, "password"))
	}
	if p, ok := c.need(m, w.node, w.path, "backends", "the zdb workloads that hold the shards, as CONTRACT/WORKLOAD, e.g. backends: [12/db1, 12/db2, 13/db1]"); ok {
		bpath := join(w.path, "backends")
		for i, item := range c.list(p.val, bpath) {
			ipath := index(bpath, i)
			s, ok := c.str(item, ipath)
			if !ok {
				continue
			}
			r, ok := parseZDBRef(s)
			if !ok {
				c.errorf(c.value(item), ipath, "%q: want CONTRACT/WORKLOAD, e.g. 12/db1 (zgrid status CONTRACT lists its zdb workloads)", s)
				continue
			}
			q.Backends = append(q.Backends, r)
		}
	}
	if len(c.errs) == 0 {
		if err := q.Validate(); err != nil {
			c.errorf(w.node, w.path, "%s", strings.TrimPrefix(err.Error(), ErrInvalid.Error()+": "))
		}
	}
	c.setConfig(w, q)
}

// parseZDBRef reads CONTRACT/WORKLOAD.
func parseZDBRef(s string) (ZDBRef, bool) {
	id, name, ok := strings.Cut(s, "/")
	n, err := strconv.ParseUint(id, 10, 64)
	if !ok || err != nil || n == 0 || !nameRE.MatchString(name) {
		return ZDBRef{}, false
	}
	return ZDBRef{Contract: n, Workload: name}, true
}

// secretRef reads the name of a secret a workload uses, noting it for
// crossCheck (which checks that it is defined and marks it used).
func (c *compiler) secretRef(n *yaml.Node, w *yWorkload, spath string) string {
	s, ok := c.str(n, spath)
	if !ok {
		return ""
	}
	if !envNameRE.MatchString(s) {
		c.errorf(c.value(n), spath, "%q is not a valid secret name: use letters, digits and _, not starting with a digit", s)
		return s
	}
	w.secretEnv = append(w.secretEnv, ref{s, c.value(n), spath})
	return s
}
