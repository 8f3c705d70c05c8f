package grid

import (
	"encoding/json"
	"fmt"
	"os"

	"github.com/zerogrid/zerogrid/internal/atomicfile"
)

// File is DIR/grid.json: where a running grid's endpoints are and which
// key to use against them.
type File struct {
	Version        int      `json:"version"` // FileVersion
	Ledger         string   `json:"ledger"`
	Hub            string   `json:"hub"`
	UserKey        string   `json:"user_key"`
	PassphraseFile string   `json:"passphrase_file"`
	Nodes          []Node   `json:"nodes"`
	Farm           uint64   `json:"farm"`
	ChainID        string   `json:"chain_id"`
	Trust          string   `json:"trust"`             // the trusted ledger state (client.TrustRoot) clients verify from
	Example        string   `json:"example,omitempty"` // the spec rewritten for this grid, if built
	Gateway        *Gateway `json:"gateway,omitempty"`
	// Release is the grid's release repository of zgridd (zgrid release
	// publish --repo); its keys are in the release/keys directory beside it,
	// under the grid's passphrase.
	Release string  `json:"release,omitempty"`
	Portal  *Portal `json:"portal,omitempty"` // the web portal, when it started
}

// FileVersion is the version of the grid.json format written by Run.
const FileVersion = 1

// Node is one node of the grid. Namespace and Address are empty when the
// node runs in the host's network namespace.
type Node struct {
	ID        uint64 `json:"id"`
	Namespace string `json:"namespace,omitempty"`
	Address   string `json:"address,omitempty"`
}

// Load reads a grid.json.
func Load(path string) (*File, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("grid file: %w (start a grid with `zgrid up --dir DIR`)", err)
	}
	var f File
	if err := json.Unmarshal(b, &f); err != nil {
		return nil, fmt.Errorf("grid file %s: %w", path, err)
	}
	if f.Version > FileVersion {
		return nil, fmt.Errorf("grid file %s: version %d is newer than this zgrid understands (%d)", path, f.Version, FileVersion)
	}
	if f.Ledger == "" || f.UserKey == "" {
		return nil, fmt.Errorf("grid file %s: no ledger or user_key", path)
	}
	return &f, nil
}

// Passphrase reads the passphrase file the grid file names.
func (f *File) Passphrase() ([]byte, error) {
	b, err := os.ReadFile(f.PassphraseFile)
	if err != nil {
		return nil, fmt.Errorf("grid passphrase: %w", err)
	}
	return trimNewline(b), nil
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return atomicfile.WriteFile(path, append(b, '\n'), 0o600)
}
