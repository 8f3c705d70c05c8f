package release

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// MaxVersionLen bounds a release version's text, like the ledger's
// software version field.
const MaxVersionLen = 64

// ErrVersion is returned for a version that is not dot-separated decimal
// numbers.
var ErrVersion = errors.New("release version")

// ParseVersion checks that s is a release version: one or more decimal
// numbers separated by dots ("1", "1.2", "2026.12.8"), without leading zeros.
func ParseVersion(s string) ([]uint64, error) {
	if s == "" || len(s) > MaxVersionLen {
		return nil, fmt.Errorf("%w %q: want dot-separated numbers such as 1 or 1.2.0, at most %d bytes", ErrVersion, s, MaxVersionLen)
	}
	parts := strings.Split(s, ".")
	v := make([]uint64, len(parts))
	for i, p := range parts {
		n, err := strconv.ParseUint(p, 10, 64)
		if err != nil || (len(p) > 1 && p[0] == '0') {
			return nil, fmt.Errorf("%w %q: part %q is not a number without leading zeros", ErrVersion, s, p)
		}
		v[i] = n
	}
	return v, nil
}

// CompareVersions returns -1, 0 or 1 as a is older than, the same as or
// newer than b; missing parts count as 0 (1.0 == 1).
func CompareVersions(a, b string) (int, error) {
	va, err := ParseVersion(a)
	if err != nil {
		return 0, err
	}
	vb, err := ParseVersion(b)
	if err != nil {
		return 0, err
	}
	for i := 0; i < max(len(va), len(vb)); i++ {
		var x, y uint64
		if i < len(va) {
			x = va[i]
		}
		if i < len(vb) {
			y = vb[i]
		}
		switch {
		case x < y:
			return -1, nil
		case x > y:
			return 1, nil
		}
	}
	return 0, nil
}

// TargetCustom is what zerogrid adds to a target in the signed targets
// metadata ("custom"): the release it belongs to and the oldest release a
// node may run and still accept new contracts.
type TargetCustom struct {
	Version    string `json:"version"`
	MinVersion string `json:"min_version,omitempty"`
}

// DecodeCustom parses a target's custom field. It comes from signed
// metadata, but is parsed strictly anyway: unknown fields and bad versions
// are errors.
func DecodeCustom(raw []byte) (TargetCustom, error) {
	var c TargetCustom
	if len(raw) == 0 {
		return c, fmt.Errorf("target has no custom field: it names no release version")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&c); err != nil {
		return c, fmt.Errorf("target custom field: %w", err)
	}
	if dec.More() {
		return c, fmt.Errorf("target custom field: data after the object")
	}
	if _, err := ParseVersion(c.Version); err != nil {
		return c, err
	}
	if c.MinVersion != "" {
		cmp, err := CompareVersions(c.MinVersion, c.Version)
		if err != nil {
			return c, fmt.Errorf("min_version: %w", err)
		}
		if cmp > 0 {
			return c, fmt.Errorf("min_version %s is newer than the release itself (%s)", c.MinVersion, c.Version)
		}
	}
	return c, nil
}
