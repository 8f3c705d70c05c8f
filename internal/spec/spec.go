// Package spec defines the canonical deployment spec: the document a twin
// signs and a node turns into running workloads.
//
// A spec travels and is signed in its canonical CBOR encoding (see
// docs/formats/spec.md). The ledger decodes it to check its shape and to sum
// the resources a node must reserve; the per-type workload configuration is
// an opaque canonical CBOR value that only the node's workload managers read.
package spec

import (
	"errors"
	"fmt"
	"regexp"

	"github.com/fxamacker/cbor/v2"

	"github.com/zerogrid/zerogrid/internal/wire"
)

// Version is the current spec format version.
const Version = 1

// Limits on a spec. They keep ledger state and node work bounded.
const (
	MaxWorkloads  = 64
	MaxSpecBytes  = 64 << 10
	MaxConfigSize = 32 << 10
)

// Workload types a spec may name.
const (
	TypeContainer   = "container"
	TypeVolume      = "volume"
	TypeNetwork     = "network"
	TypeZDB         = "zdb"
	TypeQSFS        = "qsfs"
	TypeGatewayName = "gateway-name"
)

var knownTypes = map[string]bool{
	TypeContainer: true, TypeVolume: true, TypeNetwork: true,
	TypeZDB: true, TypeQSFS: true, TypeGatewayName: true,
}

// AllTypes lists every workload type, in a fixed order.
var AllTypes = []string{TypeContainer, TypeGatewayName, TypeNetwork, TypeQSFS, TypeVolume, TypeZDB}

// KnownType reports whether t is a workload type a spec may name.
func KnownType(t string) bool { return knownTypes[t] }

// ErrInvalid wraps every validation failure.
var ErrInvalid = errors.New("invalid spec")

var nameRE = regexp.MustCompile(`^[a-z0-9][a-z0-9_-]{0,35}$`)

// Spec is a deployment: a set of named workloads.
type Spec struct {
	Version   uint16     `cbor:"v" json:"version"`
	Workloads []Workload `cbor:"workloads" json:"workloads"`
}

// Workload is one unit a node provisions.
type Workload struct {
	Name      string          `cbor:"name" json:"name"`
	Type      string          `cbor:"type" json:"type"`
	Resources Resources       `cbor:"res,omitempty" json:"resources"`
	Config    cbor.RawMessage `cbor:"config,omitempty" json:"-"`
}

// Resources is an amount of node capacity.
type Resources struct {
	CPU    uint64 `cbor:"cpu,omitempty" json:"cpu_millis"`   // thousandths of a core
	Memory uint64 `cbor:"mem,omitempty" json:"memory_bytes"` // bytes
	Disk   uint64 `cbor:"disk,omitempty" json:"disk_bytes"`  // bytes
}

// Add returns r+o, or an error on overflow.
func (r Resources) Add(o Resources) (Resources, error) {
	s := Resources{r.CPU + o.CPU, r.Memory + o.Memory, r.Disk + o.Disk}
	if s.CPU < r.CPU || s.Memory < r.Memory || s.Disk < r.Disk {
		return r, fmt.Errorf("%w: resource total overflows", ErrInvalid)
	}
	return s, nil
}

// Sub returns r-o, saturating at zero.
func (r Resources) Sub(o Resources) Resources {
	sub := func(a, b uint64) uint64 {
		if b > a {
			return 0
		}
		return a - b
	}
	return Resources{sub(r.CPU, o.CPU), sub(r.Memory, o.Memory), sub(r.Disk, o.Disk)}
}

// Fits reports whether r fits within capacity c.
func (r Resources) Fits(c Resources) bool {
	return r.CPU <= c.CPU && r.Memory <= c.Memory && r.Disk <= c.Disk
}

// String is a short human form.
func (r Resources) String() string {
	return fmt.Sprintf("cpu=%dm mem=%dMiB disk=%dMiB", r.CPU, r.Memory>>20, r.Disk>>20)
}

// Decode parses and validates canonical spec bytes.
func Decode(b []byte) (*Spec, error) {
	if len(b) > MaxSpecBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrInvalid, len(b), MaxSpecBytes)
	}
	var s Spec
	if err := wire.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if err := s.Validate(); err != nil {
		return nil, err
	}
	return &s, nil
}

// Encode validates s and returns its canonical bytes.
func (s *Spec) Encode() ([]byte, error) {
	if err := s.Validate(); err != nil {
		return nil, err
	}
	b, err := wire.Marshal(s)
	if err != nil {
		return nil, err
	}
	if len(b) > MaxSpecBytes {
		return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrInvalid, len(b), MaxSpecBytes)
	}
	return b, nil
}

// Validate checks the shape of a spec: version, workload count, unique
// well-formed names, known types, canonical bounded configs, and that what
// workloads name (a gateway's backend) exists.
func (s *Spec) Validate() error { return s.validate(true) }

// validate is Validate; refs=false skips the checks across workloads, for
// checking one workload on its own.
func (s *Spec) validate(refs bool) error {
	if s.Version != Version {
		return fmt.Errorf("%w: version %d, want %d", ErrInvalid, s.Version, Version)
	}
	if len(s.Workloads) == 0 || len(s.Workloads) > MaxWorkloads {
		return fmt.Errorf("%w: %d workloads, want 1..%d", ErrInvalid, len(s.Workloads), MaxWorkloads)
	}
	seen := make(map[string]bool, len(s.Workloads))
	for i, w := range s.Workloads {
		if !nameRE.MatchString(w.Name) {
			return fmt.Errorf("%w: workloads[%d].name %q: want 1-36 of a-z 0-9 _ - starting with a letter or digit", ErrInvalid, i, w.Name)
		}
		if seen[w.Name] {
			return fmt.Errorf("%w: workloads[%d].name %q is used twice", ErrInvalid, i, w.Name)
		}
		seen[w.Name] = true
		if !knownTypes[w.Type] {
			return fmt.Errorf("%w: workloads[%d] (%s): unknown type %q", ErrInvalid, i, w.Name, w.Type)
		}
		if len(w.Config) > MaxConfigSize {
			return fmt.Errorf("%w: workloads[%d] (%s): config is %d bytes, limit %d", ErrInvalid, i, w.Name, len(w.Config), MaxConfigSize)
		}
		if len(w.Config) > 0 {
			if err := wire.CheckCanonical(w.Config); err != nil {
				return fmt.Errorf("%w: workloads[%d] (%s) config: %v", ErrInvalid, i, w.Name, err)
			}
		}
	}
	if err := s.validateGateways(refs); err != nil {
		return err
	}
	if err := s.validateNetworks(); err != nil {
		return err
	}
	if err := s.validateStorage(); err != nil {
		return err
	}
	_, err := s.Total()
	return err
}

// Total sums the resources of all workloads.
func (s *Spec) Total() (Resources, error) {
	var t Resources
	var err error
	for _, w := range s.Workloads {
		if t, err = t.Add(w.Resources); err != nil {
			return t, err
		}
	}
	return t, nil
}
