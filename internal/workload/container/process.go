package container

import (
	"bufio"
	"bytes"
	"fmt"
	"maps"
	"os"
	"slices"
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
)

const defaultPath = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// process is what runs: the spec's entrypoint, command, environment and
// working directory over the image's defaults, as Docker does (an
// entrypoint set in the spec drops the image's command too).
type process struct {
	Args []string
	Env  []string
	Cwd  string
	User string // the image's "user[:group]", resolved against the rootfs
}

func resolveProcess(c *spec.ContainerConfig, img *v1.Config, secrets map[string]string) (process, error) {
	args := append(slices.Clone(firstNonEmpty(c.Entrypoint, img.Entrypoint)), cmdFor(c, img)...)
	if len(args) == 0 {
		return process{}, workload.Permanent(workload.ErrInvalid, "no command: neither the spec nor the image sets an entrypoint or cmd")
	}
	cwd := c.Workdir
	if cwd == "" {
		cwd = img.WorkingDir
	}
	if cwd == "" {
		cwd = "/"
	}
	return process{Args: args, Env: mergeEnv(img.Env, c.Env, secrets), Cwd: cwd, User: img.User}, nil
}

func cmdFor(c *spec.ContainerConfig, img *v1.Config) []string {
	switch {
	case len(c.Cmd) > 0:
		return c.Cmd
	case len(c.Entrypoint) > 0:
		return nil
	}
	return img.Cmd
}

func firstNonEmpty(a, b []string) []string {
	if len(a) > 0 {
		return a
	}
	return b
}

// mergeEnv keeps the image's order, replaces what the spec and then the
// secrets set (in key order, so the result is deterministic), and adds a
// default PATH when none is set.
func mergeEnv(image []string, env, secrets map[string]string) []string {
	out := slices.Clone(image)
	index := map[string]int{}
	for i, kv := range out {
		k, _, _ := strings.Cut(kv, "=")
		index[k] = i
	}
	set := func(m map[string]string) {
		for _, k := range slices.Sorted(maps.Keys(m)) {
			if i, ok := index[k]; ok {
				out[i] = k + "=" + m[k]
				continue
			}
			index[k] = len(out)
			out = append(out, k+"="+m[k])
		}
	}
	set(env)
	set(secrets)
	if _, ok := index["PATH"]; !ok {
		out = append([]string{defaultPath}, out...)
	}
	return out
}

// resolveUser maps the image's "user[:group]" (names or numbers) to ids,
// reading the rootfs's /etc/passwd and /etc/group through root.
func resolveUser(root *os.Root, user string) (uid, gid uint32, err error) {
	if user == "" {
		return 0, 0, nil
	}
	u, g, hasGroup := strings.Cut(user, ":")
	uid, gid, err = lookup(root, "etc/passwd", u, true)
	if err != nil {
		return 0, 0, err
	}
	if hasGroup {
		if gid, _, err = lookup(root, "etc/group", g, false); err != nil {
			return 0, 0, err
		}
	}
	return uid, gid, nil
}

// lookup finds name (or a number) in a passwd- or group-format file: it
// returns the id and, for passwd, the primary group. A number that is not
// in the file is used as is, with group 0, as runc and Docker do.
func lookup(root *os.Root, file, name string, passwd bool) (id, gid uint32, err error) {
	numeric, nerr := strconv.ParseUint(name, 10, 32)
	f, found := findEntry(root, file, name)
	switch {
	case found && passwd && len(f) >= 4:
		id64, err1 := strconv.ParseUint(f[2], 10, 32)
		g64, err2 := strconv.ParseUint(f[3], 10, 32)
		if err1 == nil && err2 == nil {
			return uint32(id64), uint32(g64), nil
		}
	case found && !passwd:
		if id64, err := strconv.ParseUint(f[2], 10, 32); err == nil {
			return uint32(id64), 0, nil
		}
	case nerr == nil:
		return uint32(numeric), 0, nil
	}
	return 0, 0, workload.Permanent(workload.ErrInvalid, "image user %q is not in the image's /%s", name, file)
}

// findEntry returns the fields of the line of file whose name or id is
// name.
func findEntry(root *os.Root, file, name string) ([]string, bool) {
	b, err := root.ReadFile(file)
	if err != nil {
		return nil, false
	}
	s := bufio.NewScanner(bytes.NewReader(b))
	for s.Scan() {
		f := strings.Split(s.Text(), ":")
		if len(f) >= 3 && (f[0] == name || f[2] == name) {
			return f, true
		}
	}
	return nil, false
}

// hostsFile is the container's /etc/hosts.
func hostsFile(hostname, addr string) []byte {
	return fmt.Appendf(nil, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n%s\t%s\n", addr, hostname)
}
