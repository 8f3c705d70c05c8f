package catalog

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/zerogrid/zerogrid/internal/storage"
	"github.com/zerogrid/zerogrid/internal/storage/dir"
	"github.com/zerogrid/zerogrid/internal/storage/pack"
	"github.com/zerogrid/zerogrid/internal/storage/zdbbackend"
)

// Config is a parsed store configuration file.
type Config struct {
	K           int             `yaml:"k"`
	M           int             `yaml:"m"`
	SegmentSize int             `yaml:"segment_size"`
	Backends    []BackendConfig `yaml:"backends"`
}

// BackendConfig is one entry of backends. Password is a secret: it never
// appears in errors.
type BackendConfig struct {
	ID        string `yaml:"id"`
	Type      string `yaml:"type"`
	Domain    string `yaml:"domain"`
	Path      string `yaml:"path"`      // dir
	Layout    string `yaml:"layout"`    // dir: "files" (default: one file per shard) or "packed"
	Address   string `yaml:"address"`   // zdb
	Namespace string `yaml:"namespace"` // zdb
	Password  string `yaml:"password"`  // zdb
	line      int
}

// Layouts of a dir backend.
const (
	LayoutFiles  = "files"  // one file per shard (internal/storage/dir)
	LayoutPacked = "packed" // shards appended to data files (internal/storage/pack)
)

// Params returns the data encoder's parameters.
func (c *Config) Params() storage.Params {
	return storage.Params{K: c.K, M: c.M, SegmentSize: c.SegmentSize}
}

// LoadConfig reads and validates the configuration file at path.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrConfig, err)
	}
	return ParseConfig(path, data)
}

var yamlLine = regexp.MustCompile(`^(?:yaml: )?line (\d+): (.*)$`)

// ParseConfig parses data, read from file, strictly: unknown fields, wrong
// types and missing fields are errors that name file and line. Relative
// dir paths are resolved against file's directory.
func ParseConfig(file string, data []byte) (*Config, error) {
	var c Config
	dec := yaml.NewDecoder(bytes.NewReader(data))
	dec.KnownFields(true)
	if err := dec.Decode(&c); err != nil {
		if errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("%w: %s: empty file (want k, m and backends)", ErrConfig, file)
		}
		return nil, yamlError(file, err)
	}
	var root yaml.Node
	if err := yaml.Unmarshal(data, &root); err == nil {
		backendLines(&root, c.Backends)
	}
	if err := c.validate(file); err != nil {
		return nil, err
	}
	return &c, nil
}

// yamlError rewrites yaml's "line N: msg" into "file:N: msg".
func yamlError(file string, err error) error {
	var msgs []string
	lines := []string{err.Error()}
	var te *yaml.TypeError
	if errors.As(err, &te) {
		lines = te.Errors
	}
	for _, l := range lines {
		if m := yamlLine.FindStringSubmatch(l); m != nil {
			msgs = append(msgs, fmt.Sprintf("%s:%s: %s", file, m[1], m[2]))
		} else {
			msgs = append(msgs, file+": "+l)
		}
	}
	return fmt.Errorf("%w: %s", ErrConfig, strings.Join(msgs, "; "))
}

// backendLines records the line of each backends entry.
func backendLines(root *yaml.Node, bs []BackendConfig) {
	if root.Kind != yaml.DocumentNode || len(root.Content) == 0 {
		return
	}
	m := root.Content[0]
	for i := 0; i+1 < len(m.Content); i += 2 {
		if m.Content[i].Value == "backends" {
			for j, n := range m.Content[i+1].Content {
				if j < len(bs) {
					bs[j].line = n.Line
				}
			}
		}
	}
}

func (c *Config) validate(file string) error {
	if err := c.Params().Validate(); err != nil {
		return fmt.Errorf("%w: %s: %w", ErrConfig, file, err)
	}
	if len(c.Backends) == 0 {
		return fmt.Errorf("%w: %s: no backends (want at least k+m = %d)", ErrConfig, file, c.K+c.M)
	}
	seen := map[string]bool{}
	for i := range c.Backends {
		b := &c.Backends[i]
		bad := func(format string, a ...any) error {
			return fmt.Errorf("%w: %s:%d: backend %q: %s", ErrConfig, file, b.line, b.ID, fmt.Sprintf(format, a...))
		}
		if err := storage.ValidName(b.ID); err != nil {
			return bad("id: %v", err)
		}
		if seen[b.ID] {
			return bad("id used twice")
		}
		seen[b.ID] = true
		switch b.Type {
		case "dir":
			if b.Path == "" || b.Address != "" || b.Namespace != "" || b.Password != "" {
				return bad("type dir wants path, and no address, namespace or password")
			}
			switch b.Layout {
			case "", LayoutFiles, LayoutPacked:
			default:
				return bad("layout %q: want files (one file per shard) or packed (shards appended to data files)", b.Layout)
			}
			if !filepath.IsAbs(b.Path) {
				b.Path = filepath.Join(filepath.Dir(file), b.Path)
			}
		case "zdb":
			if b.Address == "" || b.Namespace == "" || b.Path != "" || b.Layout != "" {
				return bad("type zdb wants address and namespace (and password if the namespace has one), and no path")
			}
		default:
			return bad("type %q: want dir or zdb", b.Type)
		}
		if b.Layout == LayoutPacked && maxShardSize(c.Params()) > pack.MaxObjectSize {
			return bad("shards of %d-byte segments at k = %d exceed the packed layout's %d-byte objects: lower segment_size or raise k", c.Params().SegmentSize, c.K, pack.MaxObjectSize)
		}
		if b.Type == "zdb" && maxShardSize(c.Params()) > zdbbackend.MaxObjectSize {
			return bad("shards of %d-byte segments at k = %d exceed zdb's %d-byte values: lower segment_size or raise k", c.Params().SegmentSize, c.K, zdbbackend.MaxObjectSize)
		}
	}
	return nil
}

// maxShardSize bounds the size of one shard of a full segment: its share
// of the sealed stream (a 16-byte tag per 64 KiB frame) plus the header
// (docs/formats/shard.md).
func maxShardSize(p storage.Params) int {
	seg := p.SegmentSize
	if seg == 0 {
		seg = storage.DefaultSegmentSize
	}
	data := (seg + (seg/storage.FrameSize+1)*16 + p.K - 1) / p.K
	return 67 + 32*(data/storage.BlockSize+1) + 32 + data
}

// OpenBackends constructs the configured backends. Close them with
// CloseBackends.
func (c *Config) OpenBackends(log *slog.Logger) ([]storage.Backend, error) {
	var bs []storage.Backend
	for _, bc := range c.Backends {
		var (
			b   storage.Backend
			err error
		)
		switch bc.Type {
		case "dir":
			if bc.Layout == LayoutPacked {
				b, err = pack.Open(bc.ID, bc.Domain, bc.Path, log)
			} else {
				b, err = dir.Open(bc.ID, bc.Domain, bc.Path, log)
			}
			if err != nil {
				// A missing disk is one backend down, not a failed command:
				// the store tolerates m of them.
				if log != nil {
					log.Warn("backend unavailable", "backend", bc.ID, "err", err)
				}
				b, err = downBackend{id: bc.ID, domain: bc.Domain, err: err}, nil
			}
		case "zdb":
			b, err = zdbbackend.New(zdbbackend.Config{ID: bc.ID, Domain: bc.Domain, Address: bc.Address, Namespace: bc.Namespace, Password: bc.Password})
		}
		if err != nil {
			CloseBackends(bs)
			return nil, fmt.Errorf("backend %q: %w", bc.ID, err)
		}
		bs = append(bs, b)
	}
	return bs, nil
}

// CloseBackends closes the backends that hold resources.
func CloseBackends(bs []storage.Backend) {
	for _, b := range bs {
		if c, ok := b.(io.Closer); ok {
			_ = c.Close()
		}
	}
}

// downBackend stands for a backend that could not be opened: every call
// fails with storage.ErrUnavailable and the reason.
type downBackend struct {
	id, domain string
	err        error
}

func (d downBackend) ID() string     { return d.id }
func (d downBackend) Domain() string { return d.domain }
func (d downBackend) fail() error    { return fmt.Errorf("%w: %w", storage.ErrUnavailable, d.err) }
func (d downBackend) Put(context.Context, string, []byte) error {
	return d.fail()
}
func (d downBackend) Get(context.Context, string, int64, int64) ([]byte, error) {
	return nil, d.fail()
}
func (d downBackend) Stat(context.Context, string) (storage.Info, error) {
	return storage.Info{}, d.fail()
}
func (d downBackend) Delete(context.Context, string) error { return d.fail() }
func (d downBackend) List(context.Context, string, func(storage.Info) error) error {
	return d.fail()
}
