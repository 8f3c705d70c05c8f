package spec

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// MaxYAMLBytes bounds a YAML spec file. The canonical spec it compiles to
// is at most MaxSpecBytes; this leaves room for comments.
const MaxYAMLBytes = 1 << 20

// Document is a YAML spec compiled for submission: the canonical spec, the
// node it asks for and the secrets it supplies. Secrets are not part of
// the spec: the CLI seals them to the node's key.
type Document struct {
	Spec    *Spec                  // valid: Spec.Encode succeeds
	Node    uint64                 // the node named by `node:`, or 0 if none
	Secrets map[string]SecretValue // by name; nil if the spec has none
}

// YAMLParser compiles YAML specs. Its zero value reads secrets from the
// process environment and the file system (tests and fuzzers replace
// both) and refuses images named by a tag.
// A YAMLParser is safe for concurrent use if its functions are.
type YAMLParser struct {
	// LookupEnv resolves {env: VAR} secrets. Nil means os.LookupEnv.
	LookupEnv func(key string) (string, bool)
	// ReadFile reads {file: PATH} secrets; PATH is already joined to the
	// spec file's directory. Nil means the file system, read up to
	// MaxSecretsBytes+1 bytes.
	ReadFile func(path string) ([]byte, error)
	// ResolveImage pins an image named by a tag: it is called with every
	// container image that is not pinned by digest (e.g. "hello:latest")
	// and returns HOST[:PORT]/REPO@sha256:<64 hex>, which is what the spec
	// holds; its error is reported at the image's line. Nil means such an
	// image is refused: the spec a node receives names images by digest
	// only.
	ResolveImage func(ref string) (string, error)
}

// ParseYAML compiles the YAML spec data, read from filename, with the
// zero YAMLParser.
func ParseYAML(filename string, data []byte) (*Document, error) {
	var p YAMLParser
	return p.Parse(filename, data)
}

// Parse compiles the YAML spec data, read from filename. filename appears
// in errors, and relative secret file paths are resolved against its
// directory. On failure the error is a FieldErrors listing every problem
// found, each with file, line, column and field path; the Document is nil.
func (p *YAMLParser) Parse(filename string, data []byte) (*Document, error) {
	c := &compiler{file: filename, budget: maxYAMLValues, pin: p.ResolveImage}
	doc := c.document(data, p.sources(filename))
	if len(c.errs) > 0 {
		return nil, c.errs.sorted()
	}
	return doc, nil
}

func (p *YAMLParser) sources(filename string) *secretSources {
	s := &secretSources{lookupEnv: p.LookupEnv, readFile: p.ReadFile}
	if s.lookupEnv == nil {
		s.lookupEnv = os.LookupEnv
	}
	if s.readFile == nil {
		s.readFile = readFileLimited
	}
	if filename != "" && filename != "-" {
		s.dir = filepath.Dir(filename)
	}
	return s
}

var topFields = []string{"version", "node", "workloads", "secrets"}

// document compiles the whole file; problems are left in c.errs.
func (c *compiler) document(data []byte, src *secretSources) *Document {
	root := c.parse(data)
	if root == nil {
		return nil
	}
	m := c.mapping(root, "", "a mapping with version and workloads")
	if m == nil {
		return nil
	}
	c.allow(m, "", topFields, nil)
	c.version(m, root)
	doc := &Document{Spec: &Spec{Version: Version}}
	if p, ok := m["node"]; ok {
		n, _ := c.integer(p.val, "node", 1, math.MaxInt64)
		doc.Node = uint64(n)
	}
	secrets := c.secrets(m, src)
	ws := c.workloads(m, root)
	c.crossCheck(ws, secrets)
	if len(c.errs) > 0 {
		return nil
	}
	for _, w := range ws {
		doc.Spec.Workloads = append(doc.Spec.Workloads, w.w)
	}
	c.checkCanonical(doc.Spec, ws, m["workloads"].key)
	doc.Secrets = secrets.values()
	return doc
}

var yamlLineRE = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// parse reads data as exactly one YAML document and returns its root.
func (c *compiler) parse(data []byte) *yaml.Node {
	if len(data) > MaxYAMLBytes {
		c.errorf(nil, "", "file is %d bytes, limit %d", len(data), MaxYAMLBytes)
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(data))
	var doc yaml.Node
	err := dec.Decode(&doc)
	if err == nil && (doc.Kind != yaml.DocumentNode || len(doc.Content) != 1) {
		err = io.EOF
	}
	if errors.Is(err, io.EOF) {
		c.errorf(&yaml.Node{Line: 1, Column: 1}, "", "spec is empty: want version: 1 and a list of workloads")
		return nil
	}
	if err != nil {
		c.yamlError(err)
		return nil
	}
	var next yaml.Node
	if err := dec.Decode(&next); !errors.Is(err, io.EOF) {
		at := &next
		if err != nil {
			at = nil
		}
		c.errorf(at, "", "a spec file holds one YAML document; this one has more (---)")
		return nil
	}
	return doc.Content[0]
}

// yamlError records a syntax error from the YAML library at its line.
func (c *compiler) yamlError(err error) {
	msg := err.Error()
	if m := yamlLineRE.FindStringSubmatch(msg); m != nil {
		line, _ := strconv.Atoi(m[1])
		c.errorf(&yaml.Node{Line: line}, "", "invalid YAML: %s", m[2])
		return
	}
	c.errorf(nil, "", "invalid YAML: %s", strings.TrimPrefix(msg, "yaml: "))
}

// version checks `version: 1`.
func (c *compiler) version(m fields, root *yaml.Node) {
	p, ok := c.need(m, root, "", "version", fmt.Sprintf("add version: %d", Version))
	if !ok {
		return
	}
	if v, ok := c.integer(p.val, "version", 0, 1<<16-1); ok && v != Version {
		c.errorf(p.val, "version", "version %d is not supported: this zgrid reads version %d", v, Version)
	}
}
