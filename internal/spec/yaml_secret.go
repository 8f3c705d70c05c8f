package spec

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"sort"

	"go.yaml.in/yaml/v3"
)

// MaxSecretsBytes bounds the plaintext of all of a spec's secrets together.
// Sealed and encoded they must stay under the ledger's limit on sealed
// secrets (64 KiB).
const MaxSecretsBytes = 32 << 10

// SecretValue is a secret's plaintext. It never formats, logs or marshals
// to text or JSON as its content: those render "[redacted]". Its canonical
// CBOR (wire.Marshal) is the plaintext bytes, for sealing.
type SecretValue []byte

const redacted = "[redacted]"

func (SecretValue) String() string               { return redacted }
func (SecretValue) GoString() string             { return redacted }
func (SecretValue) Format(f fmt.State, _ rune)   { io.WriteString(f, redacted) }
func (SecretValue) LogValue() slog.Value         { return slog.StringValue(redacted) }
func (SecretValue) MarshalText() ([]byte, error) { return []byte(redacted), nil }
func (SecretValue) MarshalJSON() ([]byte, error) { return []byte(`"` + redacted + `"`), nil }

// envNameRE is what a secret or environment variable may be called: it is
// passed to the container as an environment variable of that name.
var envNameRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,127}$`)

// secretSources is where {env: ...} and {file: ...} secrets come from.
type secretSources struct {
	dir       string
	lookupEnv func(string) (string, bool)
	readFile  func(string) ([]byte, error)
}

// readFileLimited reads at most MaxSecretsBytes+1 bytes of path, enough to
// tell that a file is too large without reading all of it.
func readFileLimited(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, MaxSecretsBytes+1))
}

// secret is one entry of `secrets:` and who uses it.
type secret struct {
	key   *yaml.Node
	value SecretValue
	used  bool
}

// secretSet is the spec's secrets by name.
type secretSet map[string]*secret

// values returns the secrets' plaintext by name, or nil if there are none.
func (s secretSet) values() map[string]SecretValue {
	if len(s) == 0 {
		return nil
	}
	out := make(map[string]SecretValue, len(s))
	for name, sec := range s {
		out[name] = sec.value
	}
	return out
}

// secrets reads `secrets:`, resolving each entry from its source. A secret
// whose source fails is still defined, so references to it are not
// reported a second time.
func (c *compiler) secrets(m fields, src *secretSources) secretSet {
	set := make(secretSet)
	p, ok := m["secrets"]
	if !ok {
		return set
	}
	entries := c.mapping(p.val, "secrets", "a mapping from secret names to {value: ...}, {env: VAR} or {file: PATH}")
	names := make([]string, 0, len(entries))
	for name := range entries {
		names = append(names, name)
	}
	sort.Strings(names)
	total := 0
	c.redact = true
	defer func() { c.redact = false }()
	for _, name := range names {
		e := entries[name]
		path := join("secrets", name)
		if !envNameRE.MatchString(name) {
			c.errorf(e.key, path, "%q is not a valid secret name: it becomes an environment variable, so use letters, digits and _, not starting with a digit", name)
		}
		v := c.secretValue(e.val, path, src)
		total += len(v)
		set[name] = &secret{key: e.key, value: v}
	}
	if total > MaxSecretsBytes {
		c.errorf(p.key, "secrets", "secrets total %d bytes, limit %d", total, MaxSecretsBytes)
	}
	return set
}

var secretFields = []string{"value", "env", "file"}

// secretValue resolves one secret's source: exactly one of value, env or
// file. Messages name the source, never the value.
func (c *compiler) secretValue(n *yaml.Node, path string, src *secretSources) SecretValue {
	m := c.mapping(n, path, "one of {value: ...}, {env: VAR} or {file: PATH}")
	if m == nil {
		return nil
	}
	c.allow(m, path, secretFields, nil)
	var set []string
	for _, k := range secretFields {
		if _, ok := m[k]; ok {
			set = append(set, k)
		}
	}
	if len(set) != 1 {
		c.errorf(c.value(n), path, "want exactly one of value, env or file; found %d", len(set))
		return nil
	}
	k := set[0]
	fpath := join(path, k)
	s, ok := c.str(m[k].val, fpath)
	if !ok {
		return nil
	}
	v, err := src.resolve(k, s)
	if err != nil {
		c.errorf(m[k].val, fpath, "%s", err)
		return nil
	}
	if len(v) == 0 {
		c.errorf(m[k].val, fpath, "the secret is empty")
	}
	if len(v) > MaxSecretsBytes {
		c.errorf(m[k].val, fpath, "the secret is more than %d bytes", MaxSecretsBytes)
	}
	return v
}

// resolve returns the secret that source kind k at s names.
func (s *secretSources) resolve(k, arg string) (SecretValue, error) {
	switch k {
	case "env":
		v, ok := s.lookupEnv(arg)
		if !ok {
			return nil, fmt.Errorf("environment variable %q is not set", arg)
		}
		return SecretValue(v), nil
	case "file":
		path := arg
		if !filepath.IsAbs(path) {
			path = filepath.Join(s.dir, path)
		}
		b, err := s.readFile(path)
		if err != nil {
			return nil, fmt.Errorf("read secret file: %v", err)
		}
		return SecretValue(b), nil
	}
	return SecretValue(arg), nil
}
