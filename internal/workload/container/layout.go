package container

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/zerogrid/zerogrid/internal/workload"
	"github.com/zerogrid/zerogrid/internal/workload/statefile"
)

// LayoutVersion is the version of the on-disk layout; it is part of the
// paths, so a later layout can live next to this one.
const LayoutVersion = 1

// record is a container's state.json. It is written before anything else
// of the container is created and removed after everything else is gone,
// so it is the list of what may exist.
type record struct {
	Version    int    `json:"version"`
	Deployment uint64 `json:"deployment"`
	Name       string `json:"name"`
	Owner      uint64 `json:"owner"`
	Generation uint64 `json:"generation"`
	Hash       string `json:"hash"`        // workload.Hash of the spec workload
	ConfigHash string `json:"config_hash"` // the same with resources zeroed
	Image      string `json:"image"`       // the pinned reference
	Slot       int    `json:"slot"`        // address slot (see network)
	Unpacked   bool   `json:"unpacked"`    // rootfs is complete
	Restarts   int    `json:"restarts"`
	// IDBase is the first host id of the deployment's id range, which
	// the container's user namespace maps its ids 0..65535 to and its
	// root filesystem is owned by; 0 in a record of an agent that ran
	// containers without user namespaces (converted at the next
	// Provision).
	IDBase uint32 `json:"id_base,omitempty"`
}

// layout computes the paths of one node's containers.
type layout struct {
	data     string // DataDir/workload/v1
	run      string // RunDir (tmpfs)
	mounts   string // MountDir/<instance>
	instance string
	cgroup   string // cgroup parent
}

func (l layout) dir(ref workload.Ref) string {
	return filepath.Join(l.data, "containers", strconv.FormatUint(ref.Deployment, 10), ref.Name)
}
func (l layout) state(ref workload.Ref) string  { return filepath.Join(l.dir(ref), "state.json") }
func (l layout) rootfs(ref workload.Ref) string { return filepath.Join(l.dir(ref), "rootfs") }
func (l layout) hosts(ref workload.Ref) string  { return filepath.Join(l.dir(ref), "hosts") }
func (l layout) log(ref workload.Ref) string    { return filepath.Join(l.dir(ref), "log") }
func (l layout) blobs() string                  { return filepath.Join(l.data, "images", "blobs") }
func (l layout) runcRoot() string               { return filepath.Join(l.run, "runc") }

// mountPoint is where the container's root filesystem is bind-mounted
// for runc: a path its user namespace can traverse.
func (l layout) mountPoint(ref workload.Ref) string { return filepath.Join(l.mounts, l.id(ref)) }

// rootfsMount is the bind mount runc gets a container's root filesystem
// through (rootfs/ is below DataDir, whose parents the container's user
// namespace may not be allowed to traverse). It exists only while runc
// starts the container: a started container holds its root in its own
// mount namespace, so nothing of it stays mounted on the node.
type rootfsMount struct {
	src, mnt string
	// mu is the node's: it orders creating mount points against removing
	// their emptied parent.
	mu *sync.Mutex
}

// id is the runc container id.
func (l layout) id(ref workload.Ref) string { return fmt.Sprintf("zg-%d-%s", ref.Deployment, ref.Name) }

// bundle is the runc bundle directory; its config.json holds secrets, so
// it lives under the run directory.
func (l layout) bundle(ref workload.Ref) string { return filepath.Join(l.run, "bundles", l.id(ref)) }

// cgroupPath is the container's cgroup, below the node's own parent.
func (l layout) cgroupPath(ref workload.Ref) string {
	return fmt.Sprintf("%s/%s/%d-%s", l.cgroup, l.instance, ref.Deployment, ref.Name)
}

func (l layout) load(ref workload.Ref) (rec record, ok bool, err error) {
	ok, err = statefile.LoadVersion(l.state(ref), &rec, LayoutVersion)
	return rec, ok, err
}

func (l layout) save(ref workload.Ref, rec record) error {
	if err := os.MkdirAll(l.dir(ref), 0o700); err != nil {
		return err
	}
	return statefile.Save(l.state(ref), rec)
}

// list returns the containers that have a record.
func (l layout) list() ([]workload.Ref, error) {
	return workload.ListRecords(filepath.Join(l.data, "containers"), l.state)
}

// LayoutVersion implements statefile.Versioned.
func (r *record) LayoutVersion() int { return r.Version }
