package hub

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/zerogrid/zerogrid/internal/atomicfile"
)

// The store's layout on disk (docs/formats/hub.md):
//
//	DIR/zerogrid-hub.json                          {"format":"zerogrid-hub","version":1}
//	DIR/blobs/sha256/<hex>                         blob and manifest bytes, by digest
//	DIR/repos/<name>/_manifests/sha256/<hex>       media type of a manifest of <name>
//	DIR/repos/<name>/_tags/<tag>                   "sha256:<hex>\n"
//	DIR/uploads/                                   uploads in progress; emptied at start
const (
	layoutVersion = 1
	layoutFormat  = "zerogrid-hub"
	markerFile    = "zerogrid-hub.json"
	blobsDir      = "blobs/sha256"
	reposDir      = "repos"
	uploadsDir    = "uploads"
	manifestsDir  = "_manifests/sha256"
	tagsDir       = "_tags"

	dirMode  = 0o750
	fileMode = 0o640
)

type marker struct {
	Format  string `json:"format"`
	Version int    `json:"version"`
}

// openLayout creates the store in dir if dir is missing or empty, or checks
// that dir holds a store of this version. In-progress uploads of an earlier
// run are discarded: their sessions lived in memory.
func openLayout(dir string) error {
	if err := checkMarker(dir); err != nil {
		return err
	}
	for _, d := range []string{blobsDir, reposDir, uploadsDir} {
		if err := os.MkdirAll(filepath.Join(dir, d), dirMode); err != nil {
			return fmt.Errorf("hub store %s: %w", dir, err)
		}
	}
	up := filepath.Join(dir, uploadsDir)
	ents, err := os.ReadDir(up)
	if err != nil {
		return fmt.Errorf("hub store %s: %w", dir, err)
	}
	for _, e := range ents {
		if err := os.RemoveAll(filepath.Join(up, e.Name())); err != nil {
			return fmt.Errorf("discard stale upload: %w", err)
		}
	}
	return nil
}

func checkMarker(dir string) error {
	b, err := os.ReadFile(filepath.Join(dir, markerFile))
	if errors.Is(err, fs.ErrNotExist) {
		return initLayout(dir)
	}
	if err != nil {
		return fmt.Errorf("hub store %s: %w", dir, err)
	}
	var m marker
	if err := json.Unmarshal(b, &m); err != nil || m.Format != layoutFormat {
		return fmt.Errorf("%w: %s has no valid %s", ErrNotHubDir, dir, markerFile)
	}
	if m.Version != layoutVersion {
		return fmt.Errorf("%w: %s is version %d, this build reads version %d", ErrLayoutVersion, dir, m.Version, layoutVersion)
	}
	return nil
}

// initLayout writes the marker into a missing or empty dir. A non-empty dir
// without a marker is refused, so that the hub never mixes its files with
// someone else's.
func initLayout(dir string) error {
	if err := os.MkdirAll(dir, dirMode); err != nil {
		return fmt.Errorf("hub store %s: %w", dir, err)
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return fmt.Errorf("hub store %s: %w", dir, err)
	}
	if len(ents) > 0 {
		return fmt.Errorf("%w: %s is not empty and has no %s: use an empty or new directory", ErrNotHubDir, dir, markerFile)
	}
	b, _ := json.Marshal(marker{Format: layoutFormat, Version: layoutVersion})
	return writeFileAtomic(filepath.Join(dir, markerFile), append(b, '\n'))
}

// writeFileAtomic replaces path with data (atomicfile.WriteFile): readers
// see the old content or the new, never a part.
func writeFileAtomic(path string, data []byte) error {
	if err := os.MkdirAll(filepath.Dir(path), dirMode); err != nil {
		return err
	}
	return atomicfile.WriteFile(path, data, fileMode)
}
