package spec

import (
	"errors"
	"fmt"
	"math"
	"math/big"
	"regexp"
	"strings"
)

// sizeUnits are the multipliers a size may carry: powers of 1000 (k, M, G,
// T) and of 1024 (Ki, Mi, Gi, Ti), each with an optional B. No unit means
// bytes.
var sizeUnits = map[string]uint64{
	"": 1, "B": 1,
	"k": 1e3, "kB": 1e3, "K": 1e3, "KB": 1e3,
	"M": 1e6, "MB": 1e6,
	"G": 1e9, "GB": 1e9,
	"T": 1e12, "TB": 1e12,
	"Ki": 1 << 10, "KiB": 1 << 10,
	"Mi": 1 << 20, "MiB": 1 << 20,
	"Gi": 1 << 30, "GiB": 1 << 30,
	"Ti": 1 << 40, "TiB": 1 << 40,
}

var quantityRE = regexp.MustCompile(`^([0-9]+(?:\.[0-9]+)?) ?([A-Za-z]*)$`)

// cpuUnits are the multipliers of a CPU amount, in millicores.
var cpuUnits = map[string]uint64{"": 1000, "m": 1}

// ParseSize parses a byte count such as 1073741824, 512MiB, 1.5Gi or 2G.
// The error quotes s and says what is wrong with it.
func ParseSize(s string) (uint64, error) {
	n, err := parseQuantity(s, sizeUnits, "bytes",
		"use k, M, G, T (powers of 1000) or Ki, Mi, Gi, Ti (powers of 1024), optionally followed by B")
	if err != nil {
		return 0, fmt.Errorf("%q %w", s, err)
	}
	return n, nil
}

// ParseCPU parses an amount of CPU into thousandths of a core: 500m, 0.5,
// 1 and 2.25 are 500, 500, 1000 and 2250. The error quotes s and says what
// is wrong with it.
func ParseCPU(s string) (uint64, error) {
	n, err := parseQuantity(s, cpuUnits, "millicores", "write cores (0.5, 2) or millicores (500m)")
	if err != nil {
		return 0, fmt.Errorf("%q %w", s, err)
	}
	return n, nil
}

// parseQuantity parses a positive decimal number of the unit that follows
// it, returning it in the units' base unit, what.
func parseQuantity(s string, units map[string]uint64, what, hint string) (uint64, error) {
	num, unit, err := splitQuantity(s)
	if err != nil {
		return 0, err
	}
	mult, ok := units[unit]
	if !ok {
		return 0, fmt.Errorf("has an unknown unit %q: %s", unit, hint)
	}
	return scale(num, mult, what)
}

// splitQuantity splits a positive quantity into its number and unit.
func splitQuantity(s string) (num, unit string, err error) {
	s = strings.TrimSpace(s)
	if strings.HasPrefix(s, "-") {
		return "", "", errors.New("is negative")
	}
	m := quantityRE.FindStringSubmatch(s)
	if m == nil {
		return "", "", errors.New("is not a number with an optional unit")
	}
	return m[1], m[2], nil
}

// scale returns the decimal num times mult, which must be a positive whole
// number of what that fits in a uint64.
func scale(num string, mult uint64, what string) (uint64, error) {
	if len(num) > 40 {
		return 0, errors.New("has too many digits")
	}
	r, ok := new(big.Rat).SetString(num)
	if !ok {
		return 0, errors.New("is not a number")
	}
	r.Mul(r, new(big.Rat).SetUint64(mult))
	switch {
	case r.Sign() == 0:
		return 0, errors.New("must be more than 0")
	case !r.IsInt():
		return 0, fmt.Errorf("is not a whole number of %s", what)
	case !r.Num().IsUint64():
		return 0, fmt.Errorf("is too large: more than %d %s", uint64(math.MaxUint64), what)
	}
	return r.Num().Uint64(), nil
}
