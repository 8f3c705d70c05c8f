package workload

import (
	"fmt"
	"log/slog"
	"maps"
	"slices"
)

// Secrets holds a deployment's opened secrets by name. It never prints its
// values: String, GoString and LogValue show only the names' count. The
// zero value and nil hold no secrets. A Secrets is immutable and safe for
// concurrent use.
type Secrets struct {
	m map[string][]byte
}

// NewSecrets copies m.
func NewSecrets(m map[string][]byte) *Secrets {
	c := make(map[string][]byte, len(m))
	for k, v := range m {
		c[k] = slices.Clone(v)
	}
	return &Secrets{m: c}
}

// Get returns a copy of the named secret's value.
func (s *Secrets) Get(name string) ([]byte, bool) {
	if s == nil {
		return nil, false
	}
	v, ok := s.m[name]
	return slices.Clone(v), ok
}

// Names returns the secrets' names, sorted.
func (s *Secrets) Names() []string {
	if s == nil {
		return nil
	}
	return slices.Sorted(maps.Keys(s.m))
}

func (s *Secrets) String() string {
	if s == nil {
		return "secrets(none)"
	}
	return fmt.Sprintf("secrets(%d, redacted)", len(s.m))
}

// GoString keeps %#v from printing values.
func (s *Secrets) GoString() string { return s.String() }

// LogValue keeps slog from printing values.
func (s *Secrets) LogValue() slog.Value { return slog.StringValue(s.String()) }
