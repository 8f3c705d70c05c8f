package spec

import (
	"fmt"
	"math"
	"regexp"
	"slices"
	"strings"

	"go.yaml.in/yaml/v3"
)

// maxYAMLValues bounds how many YAML values one parse visits. Aliases can
// make a small file expand to an enormous tree (and a cyclic one); the
// walker charges every visit against this budget instead.
const maxYAMLValues = 100_000

// compiler walks a YAML node tree, collecting problems as FieldErrors
// rather than stopping at the first.
type compiler struct {
	file   string
	errs   FieldErrors
	budget int
	redact bool // set while reading secrets: messages must not quote values

	// pin is YAMLParser.ResolveImage.
	pin func(ref string) (string, error)
}

// errorf records a problem at n (which may be nil) in the field at path.
func (c *compiler) errorf(n *yaml.Node, path, format string, args ...any) {
	if len(c.errs) > maxFieldErrors {
		return
	}
	msg := oneLine.Replace(fmt.Sprintf(format, args...))
	e := &FieldError{File: c.file, Path: path, Msg: msg}
	if n != nil {
		e.Line, e.Col = n.Line, n.Column
	}
	if len(c.errs) == maxFieldErrors {
		e = &FieldError{File: c.file, Msg: fmt.Sprintf("more than %d problems; fix these first", maxFieldErrors)}
	}
	c.errs = append(c.errs, e)
}

// oneLine keeps each problem on one line of FieldErrors.Error, whatever
// text it quotes from the file or the system.
var oneLine = strings.NewReplacer("\n", `\n`, "\r", `\r`)

// value returns n with aliases followed, charging one visit to the budget.
// It returns nil, having recorded why, once the budget is spent.
func (c *compiler) value(n *yaml.Node) *yaml.Node {
	for i := 0; n != nil && n.Kind == yaml.AliasNode && i < 8; i++ {
		n = n.Alias
	}
	c.budget--
	if c.budget == -1 {
		c.errorf(nil, "", "the spec expands to more than %d values (through aliases?)", maxYAMLValues)
	}
	if c.budget < 0 || n == nil || n.Kind == yaml.AliasNode {
		return nil
	}
	return n
}

// scalarKinds names the scalar tags in messages.
var scalarKinds = map[string]string{
	"!!str": "string", "!!int": "number", "!!float": "number",
	"!!bool": "boolean", "!!timestamp": "date",
}

// describe names what n holds, for "want X, not Y" messages. Under
// secrets it leaves out the value itself.
func (c *compiler) describe(n *yaml.Node) string {
	kind, ok := scalarKinds[n.ShortTag()]
	switch {
	case n.Kind == yaml.MappingNode:
		return "a mapping"
	case n.Kind == yaml.SequenceNode:
		return "a list"
	case n.ShortTag() == "!!null":
		return "empty"
	case !ok:
		kind = "value tagged " + n.ShortTag()
	}
	if c.redact {
		return "a " + kind
	}
	return fmt.Sprintf("the %s %q", kind, n.Value)
}

// pair is one key and its value in a mapping.
type pair struct{ key, val *yaml.Node }

// fields is a mapping's pairs by key.
type fields map[string]pair

// mapping reads n as a mapping, reporting non-string and repeated keys.
// It returns nil if n is not a mapping.
func (c *compiler) mapping(n *yaml.Node, path, want string) fields {
	v := c.value(n)
	if v == nil {
		return nil
	}
	if v.Kind != yaml.MappingNode {
		c.errorf(v, path, "want %s, not %s", want, c.describe(v))
		return nil
	}
	m := make(fields, len(v.Content)/2)
	for i := 0; i+1 < len(v.Content); i += 2 {
		k, val := v.Content[i], v.Content[i+1]
		switch {
		case k.ShortTag() == "!!merge":
			c.errorf(k, path, "merge keys (<<) are not supported: write the fields out, or alias a whole value")
		case k.Kind != yaml.ScalarNode || k.ShortTag() == "!!null":
			c.errorf(k, path, "a key must be a name, not %s", c.describe(k))
		case m[k.Value] != (pair{}):
			c.errorf(k, join(path, k.Value), "repeated: already set on line %d", m[k.Value].key.Line)
		default:
			m[k.Value] = pair{k, val}
		}
	}
	return m
}

// allow reports every key of m that is not in known. other, if not nil,
// explains a key that belongs elsewhere (say, to another workload type).
func (c *compiler) allow(m fields, path string, known []string, other func(string) string) {
	for k, p := range m {
		if slices.Contains(known, k) {
			continue
		}
		msg := fmt.Sprintf("unknown field %q", k)
		if why := otherField(other, k); why != "" {
			msg += ": " + why
		} else if s := closest(k, known); s != "" {
			msg += fmt.Sprintf(": did you mean %q?", s)
		}
		c.errorf(p.key, join(path, k), "%s", msg)
	}
}

func otherField(other func(string) string, k string) string {
	if other == nil {
		return ""
	}
	return other(k)
}

// need returns the field named k, reporting it missing with hint.
func (c *compiler) need(m fields, at *yaml.Node, path, k, hint string) (pair, bool) {
	p, ok := m[k]
	if !ok {
		c.errorf(at, join(path, k), "missing: %s", hint)
	}
	return p, ok
}

// str reads a scalar as text: strings, and numbers, booleans and dates as
// they are written, so `PORT: 8080` means "8080".
func (c *compiler) str(n *yaml.Node, path string) (string, bool) {
	return c.scalar(n, path, "a string")
}

// scalar is str with what to ask for when n is not a scalar.
func (c *compiler) scalar(n *yaml.Node, path, want string) (string, bool) {
	v := c.value(n)
	if v == nil {
		return "", false
	}
	switch v.ShortTag() {
	case "!!str", "!!int", "!!float", "!!bool", "!!timestamp":
		if v.Kind == yaml.ScalarNode {
			return v.Value, true
		}
	}
	c.errorf(v, path, "want %s, not %s", want, c.describe(v))
	return "", false
}

// integer reads a whole number in lo..hi.
func (c *compiler) integer(n *yaml.Node, path string, lo, hi int64) (int64, bool) {
	v := c.value(n)
	if v == nil {
		return 0, false
	}
	var x int64
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!int" {
		c.errorf(v, path, "want a whole number, not %s", c.describe(v))
		return 0, false
	}
	if err := v.Decode(&x); err != nil || x < lo || x > hi {
		want := fmt.Sprintf("%d..%d", lo, hi)
		if hi == math.MaxInt64 {
			want = fmt.Sprintf("%d or more", lo)
		}
		c.errorf(v, path, "%s is out of range: want %s", v.Value, want)
		return 0, false
	}
	return x, true
}

// boolean reads true or false.
func (c *compiler) boolean(n *yaml.Node, path string) (bool, bool) {
	v := c.value(n)
	if v == nil {
		return false, false
	}
	var b bool
	if v.Kind != yaml.ScalarNode || v.ShortTag() != "!!bool" || v.Decode(&b) != nil {
		c.errorf(v, path, "want true or false, not %s", c.describe(v))
		return false, false
	}
	return b, true
}

// list reads a sequence, returning its items unresolved.
func (c *compiler) list(n *yaml.Node, path string) []*yaml.Node {
	v := c.value(n)
	if v == nil {
		return nil
	}
	if v.Kind != yaml.SequenceNode {
		c.errorf(v, path, "want a list, not %s", c.describe(v))
		return nil
	}
	return v.Content
}

// strList reads a list of strings; ok is false if any item is bad.
func (c *compiler) strList(n *yaml.Node, path string) (out []string, ok bool) {
	ok = true
	for i, item := range c.list(n, path) {
		s, good := c.str(item, index(path, i))
		if good && strings.ContainsRune(s, 0) {
			c.errorf(item, index(path, i), "contains a NUL byte")
			good = false
		}
		out = append(out, s)
		ok = ok && good
	}
	return out, ok
}

var identRE = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]*$`)

// join appends field k to path, quoting keys that are not identifiers.
func join(path, k string) string {
	if !identRE.MatchString(k) {
		return fmt.Sprintf("%s[%q]", path, k)
	}
	if path == "" {
		return k
	}
	return path + "." + k
}

// index appends list index i to path.
func index(path string, i int) string { return fmt.Sprintf("%s[%d]", path, i) }

// closest returns the word in words within edit distance 2 of s, if any.
func closest(s string, words []string) string {
	best, bestD := "", 3
	for _, w := range words {
		if d := editDistance(s, w); d < bestD {
			best, bestD = w, d
		}
	}
	return best
}

// editDistance is the Levenshtein distance between a and b.
func editDistance(a, b string) int {
	if len(a) > 64 || len(b) > 64 {
		return max(len(a), len(b))
	}
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
