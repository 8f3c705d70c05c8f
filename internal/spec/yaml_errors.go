package spec

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
)

// maxFieldErrors bounds how many problems one parse reports. A file with
// more is far enough off that the first ones are what the user needs.
const maxFieldErrors = 50

// FieldError is one problem in a YAML spec, located in its file.
type FieldError struct {
	File string // the file name given to ParseYAML
	Line int    // 1-based; 0 when the problem has no single place
	Col  int    // 1-based; 0 when unknown
	Path string // the field, e.g. workloads[0].mounts[1].path; "" for the whole document
	Msg  string // what is wrong and, where it helps, what to write instead
}

// Error formats the problem as FILE:LINE:COL: PATH: MSG, leaving out the
// parts that are unknown.
func (e *FieldError) Error() string {
	var b strings.Builder
	b.WriteString(e.File)
	if e.Line > 0 {
		fmt.Fprintf(&b, ":%d", e.Line)
		if e.Col > 0 {
			fmt.Fprintf(&b, ":%d", e.Col)
		}
	}
	b.WriteString(": ")
	if e.Path != "" {
		b.WriteString(e.Path)
		b.WriteString(": ")
	}
	b.WriteString(e.Msg)
	return b.String()
}

// Unwrap makes every FieldError an ErrInvalid.
func (e *FieldError) Unwrap() error { return ErrInvalid }

// FieldErrors is every problem found in one YAML spec, in file order.
// ParseYAML returns it as its error; use errors.As to inspect it.
type FieldErrors []*FieldError

// Error lists the problems one per line.
func (es FieldErrors) Error() string {
	lines := make([]string, len(es))
	for i, e := range es {
		lines[i] = e.Error()
	}
	return strings.Join(lines, "\n")
}

// Unwrap returns the individual problems, so errors.Is(err, ErrInvalid)
// holds and errors.As finds a *FieldError.
func (es FieldErrors) Unwrap() []error {
	out := make([]error, len(es))
	for i, e := range es {
		out[i] = e
	}
	return out
}

// sorted returns es ordered by position; problems without a line come last.
func (es FieldErrors) sorted() FieldErrors {
	key := func(e *FieldError) int {
		if e.Line == 0 {
			return int(^uint(0) >> 1)
		}
		return e.Line
	}
	slices.SortStableFunc(es, func(a, b *FieldError) int {
		return cmp.Or(cmp.Compare(key(a), key(b)), cmp.Compare(a.Col, b.Col))
	})
	return es
}
