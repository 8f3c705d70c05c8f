package volume

import (
	"os"
	"path/filepath"
	"strconv"

	"github.com/zerogrid/zerogrid/internal/workload"
	"github.com/zerogrid/zerogrid/internal/workload/statefile"
)

// LayoutVersion is the version of the on-disk layout below DataDir; it is
// part of the path, so a future layout can live next to this one.
const LayoutVersion = 1

// Kinds of volume.
const (
	KindExt4 = "ext4" // loop-mounted ext4 image: size enforced
	KindDir  = "dir"  // plain directory: size not enforced (fallback)
)

// record is a volume's state.json: written before anything else is
// created, removed after everything else is gone, so it is the record of
// what may exist.
type record struct {
	Version    int    `json:"version"`
	Deployment uint64 `json:"deployment"`
	Name       string `json:"name"`
	Owner      uint64 `json:"owner"`
	Size       uint64 `json:"size"`             // bytes; the image file's length
	Kind       string `json:"kind"`             // KindExt4 or KindDir
	Reason     string `json:"reason,omitempty"` // for KindDir: why the size is not enforced
	// IDBase is the first host id of the deployment's id range, which
	// the data is owned in; 0 in a record of an agent that ran containers
	// without user namespaces (the owners are shifted at the next
	// Provision).
	IDBase uint32 `json:"id_base,omitempty"`
}

// layout computes paths below the volumes root.
type layout struct{ root string }

func (l layout) dir(ref workload.Ref) string {
	return filepath.Join(l.root, strconv.FormatUint(ref.Deployment, 10), ref.Name)
}
func (l layout) state(ref workload.Ref) string { return filepath.Join(l.dir(ref), "state.json") }
func (l layout) image(ref workload.Ref) string { return filepath.Join(l.dir(ref), "disk.img") }
func (l layout) mnt(ref workload.Ref) string   { return filepath.Join(l.dir(ref), "mnt") }
func (l layout) plain(ref workload.Ref) string { return filepath.Join(l.dir(ref), "dir") }

// data is the directory containers mount.
func (l layout) data(ref workload.Ref, kind string) string {
	if kind == KindDir {
		return filepath.Join(l.plain(ref), "data")
	}
	return filepath.Join(l.mnt(ref), "data")
}

// load reads ref's record; ok is false when there is none.
func (l layout) load(ref workload.Ref) (rec record, ok bool, err error) {
	ok, err = statefile.LoadVersion(l.state(ref), &rec, LayoutVersion)
	return rec, ok, err
}

// save writes rec atomically and durably.
func (l layout) save(ref workload.Ref, rec record) error {
	if err := os.MkdirAll(l.dir(ref), 0o700); err != nil {
		return err
	}
	return statefile.Save(l.state(ref), rec)
}

// list returns every volume that has a record.
func (l layout) list() ([]workload.Ref, error) {
	return workload.ListRecords(l.root, l.state)
}

// LayoutVersion implements statefile.Versioned.
func (r *record) LayoutVersion() int { return r.Version }
