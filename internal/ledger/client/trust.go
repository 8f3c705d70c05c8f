package client

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/zerogrid/zerogrid/internal/atomicfile"
)

// DefaultTrustPeriod is how long a verified header stays a valid base for
// verifying newer ones (CometBFT's light client refuses to start from an
// older one). A client that runs at least this often keeps its trust
// moving forward by itself.
const DefaultTrustPeriod = 14 * 24 * time.Hour

// ErrNoTrust is returned by Dial when it has nothing to trust the ledger
// from.
var ErrNoTrust = errors.New("no trusted state for the ledger")

// TrustRoot is what a client trusts a ledger from: the chain id and the
// hash of one block header at a height, which the client got from a source
// it trusts (its own validator, the farm owner, `zgrid up`). Everything
// else (later headers, validator set changes, the state in every answer)
// is verified from it. See docs/formats/trust.md.
type TrustRoot struct {
	Chain  string        `json:"chain_id"`
	Height int64         `json:"height"`
	Hash   HexBytes      `json:"hash"`
	Period time.Duration `json:"-"`
}

// HexBytes marshals as upper-case hex, as CometBFT prints hashes.
type HexBytes []byte

func (h HexBytes) MarshalText() ([]byte, error) {
	return []byte(strings.ToUpper(hex.EncodeToString(h))), nil
}

func (h *HexBytes) UnmarshalText(b []byte) error {
	v, err := hex.DecodeString(string(b))
	if err != nil {
		return fmt.Errorf("hash %q is not hex", b)
	}
	*h = v
	return nil
}

func (h HexBytes) String() string { return strings.ToUpper(hex.EncodeToString(h)) }

// trustFile is TrustRoot as stored, with the period as text.
type trustFile struct {
	TrustRoot
	Period string `json:"trust_period"`
}

// Validate checks a root's fields.
func (r TrustRoot) Validate() error {
	switch {
	case r.Chain == "":
		return fmt.Errorf("%w: no chain id", ErrNoTrust)
	case r.Height <= 0:
		return fmt.Errorf("%w: height %d is not positive", ErrNoTrust, r.Height)
	case len(r.Hash) != 32:
		return fmt.Errorf("%w: the header hash has %d bytes, want 32", ErrNoTrust, len(r.Hash))
	case r.Period <= 0:
		return fmt.Errorf("%w: no trust period", ErrNoTrust)
	}
	return nil
}

// ReadTrustFile reads a trust file. A missing file returns an error for
// which errors.Is(err, os.ErrNotExist) holds.
func ReadTrustFile(path string) (TrustRoot, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return TrustRoot{}, err
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f trustFile
	if err := dec.Decode(&f); err != nil {
		return TrustRoot{}, fmt.Errorf("trust file %s: %w", path, err)
	}
	r := f.TrustRoot
	if f.Period == "" {
		r.Period = DefaultTrustPeriod
	} else if r.Period, err = time.ParseDuration(f.Period); err != nil {
		return TrustRoot{}, fmt.Errorf("trust file %s: trust_period %q: %w", path, f.Period, err)
	}
	if err := r.Validate(); err != nil {
		return TrustRoot{}, fmt.Errorf("trust file %s: %w", path, err)
	}
	return r, nil
}

// WriteTrustFile writes r to path atomically (0600; the directory is made
// if needed).
func WriteTrustFile(path string, r TrustRoot) error {
	if err := r.Validate(); err != nil {
		return err
	}
	b, err := json.MarshalIndent(trustFile{TrustRoot: r, Period: r.Period.String()}, "", "  ")
	if err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o600)
}

// ParseTrustOptions reads "HEIGHT:HASH" (as `zgrid chain status` prints a
// verified header) into a root for chain.
func ParseTrustOptions(s string) (height int64, hash HexBytes, err error) {
	h, x, ok := strings.Cut(s, ":")
	if !ok {
		return 0, nil, fmt.Errorf("trust options %q: want HEIGHT:HASH", s)
	}
	if height, err = strconv.ParseInt(h, 10, 64); err != nil || height <= 0 {
		return 0, nil, fmt.Errorf("trust options %q: height %q is not a positive number", s, h)
	}
	if err := hash.UnmarshalText([]byte(x)); err != nil || len(hash) != 32 {
		return 0, nil, fmt.Errorf("trust options %q: want a 64-digit hex header hash", s)
	}
	return height, hash, nil
}

// KeepTrust returns options for a daemon that keeps its trusted ledger
// state in its own file: that file when it exists, else a start from
// rootFile (a trust file from `zgrid up` or `zgridd chain`), else from
// fallback. With none of them it refuses, naming what to pass (other
// says what else could carry a root): a daemon never takes its chain or
// validators from the ledger it asks.
func KeepTrust(file, rootFile string, fallback *TrustRoot, other string) (Options, error) {
	opts := Options{TrustFile: file}
	if _, err := os.Stat(file); err == nil {
		return opts, nil
	} else if !errors.Is(err, os.ErrNotExist) {
		return opts, err
	}
	switch {
	case rootFile != "":
		r, err := ReadTrustFile(rootFile)
		if err != nil {
			return opts, fmt.Errorf("--trust-root: %w", err)
		}
		opts.TrustRoot = &r
	case fallback != nil:
		opts.TrustRoot = fallback
	default:
		also := ""
		if other != "" {
			also = " or " + other
		}
		return opts, fmt.Errorf("%w yet (%s does not exist): pass --trust-root FILE (a trust file from `zgrid up` or `zgridd chain`)%s", ErrNoTrust, file, also)
	}
	return opts, nil
}
