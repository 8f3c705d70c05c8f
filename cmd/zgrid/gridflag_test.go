package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zerogrid/zerogrid/internal/grid"
)

// TestGridFlag: --grid FILE supplies the ledger, the key and its
// passphrase, as `zgrid up` writes them.
func TestGridFlag(t *testing.T) {
	url := startLedger(t)
	dir := t.TempDir()
	const pass = "grid flag passphrase"
	t.Setenv("ZGRID_PASSPHRASE", pass)
	key := filepath.Join(dir, "user.key")
	mustRun(t, "key", "new", "--out", key)
	passFile := filepath.Join(dir, "passphrase")
	os.WriteFile(passFile, []byte(pass), 0o600)
	b, _ := json.Marshal(grid.File{Version: grid.FileVersion, Ledger: url, UserKey: key, PassphraseFile: passFile})
	gridFile := filepath.Join(dir, "grid.json")
	os.WriteFile(gridFile, b, 0o600)

	t.Setenv("ZGRID_PASSPHRASE", "") // only the grid's passphrase file can open the key now
	if out := mustRun(t, "--grid", gridFile, "twin", "register"); strings.TrimSpace(out) != "1" {
		t.Fatalf("twin register via --grid: %q", out)
	}
	if _, _, err := run(t, "--grid", filepath.Join(dir, "missing.json"), "chain", "status"); err == nil || !strings.Contains(err.Error(), "missing.json") {
		t.Fatalf("missing grid file: %v", err)
	}
}
