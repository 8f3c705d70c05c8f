package zdb

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Mode is how a namespace chooses keys.
type Mode string

const (
	// ModeUser lets the client choose every key (0-db's "userkey").
	ModeUser Mode = "user"
	// ModeSeq makes SET with an empty key append and return the next
	// sequence id as an 8-byte little-endian key (0-db's "sequential").
	ModeSeq Mode = "seq"
)

// DefaultNamespace always exists and cannot be removed.
const DefaultNamespace = "default"

const (
	settingsFileName = "namespace.json"
	// settingsVersion is the version written. Version 1 files are read too:
	// their public flag was set on every new namespace, not by an admin, so
	// it is read as private (see readSettings).
	settingsVersion = 2
	maxPasswordLen  = 128
)

// settings are a namespace's properties, stored in DIR/<ns>/namespace.json
// (mode 0600: it holds the password in clear, which the SHA-1 challenge
// needs). Public is true only when an admin set it (NSSET ns public 1): a
// namespace with a password is private unless made public explicitly.
type settings struct {
	Version  int    `json:"version"`
	Name     string `json:"name"`
	Password string `json:"password,omitempty"`
	Public   bool   `json:"public"`
	MaxSize  int64  `json:"maxsize"`
	Mode     Mode   `json:"mode"`
}

func defaultSettings(name string) settings {
	return settings{Version: settingsVersion, Name: name, Mode: ModeUser}
}

// validName reports whether name can be a namespace (and directory) name:
// 1 to 128 of A-Z a-z 0-9 . _ -, starting with a letter or digit.
func validName(name string) bool {
	if len(name) == 0 || len(name) > 128 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || c != '.' && c != '_' && c != '-') {
			return false
		}
	}
	return true
}

func (s settings) validate() error {
	switch {
	case s.Version != 1 && s.Version != settingsVersion:
		return fmt.Errorf("version %d, this build reads 1 and %d", s.Version, settingsVersion)
	case !validName(s.Name):
		return fmt.Errorf("name %q: %w", s.Name, ErrBadNamespaceName)
	case s.Mode != ModeUser && s.Mode != ModeSeq:
		return fmt.Errorf("mode %q: want %q or %q", s.Mode, ModeUser, ModeSeq)
	case s.MaxSize < 0:
		return fmt.Errorf("maxsize %d is negative", s.MaxSize)
	case len(s.Password) > maxPasswordLen:
		return fmt.Errorf("password longer than %d bytes", maxPasswordLen)
	}
	return nil
}

func writeSettings(dir string, s settings) error {
	return writeFileAtomic(dir, settingsFileName, func(w *bufio.Writer) error {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	})
}

// readSettings fails closed: a namespace whose settings do not parse is not
// opened, since guessing would drop its password. A version 1 file is read
// as private: version 1 made every new namespace public, so its flag does
// not say that an admin chose it. wasPublic reports a version 1 namespace
// with a password that was public, for the caller to log.
func readSettings(dir string) (s settings, wasPublic bool, err error) {
	s, err = decodeSettings(dir)
	if err != nil || s.Version != 1 {
		return s, false, err
	}
	wasPublic = s.Public && s.Password != ""
	s.Version, s.Public = settingsVersion, false
	return s, wasPublic, nil
}

func decodeSettings(dir string) (settings, error) {
	path := filepath.Join(dir, settingsFileName)
	b, err := os.ReadFile(path)
	if err != nil {
		return settings{}, err
	}
	var s settings
	if err := json.Unmarshal(b, &s); err != nil {
		return settings{}, fmt.Errorf("%s: %w (fix the JSON or restore it from a backup)", path, err)
	}
	if err := s.validate(); err != nil {
		return settings{}, fmt.Errorf("%s: %w", path, err)
	}
	if s.Name != filepath.Base(dir) {
		return settings{}, fmt.Errorf("%s: name %q does not match its directory", path, s.Name)
	}
	return s, nil
}
