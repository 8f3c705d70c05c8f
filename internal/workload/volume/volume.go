package volume

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sync"

	"github.com/zerogrid/zerogrid/internal/eventlog"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
	"github.com/zerogrid/zerogrid/internal/workload/idmap"
)

// MinSize is the smallest volume: below it ext4's own metadata would not
// leave room for data.
const MinSize = 4 << 20

// Config configures a Manager.
type Config struct {
	// DataDir is the node's data directory; volumes live below
	// DataDir/workload/v1/volumes.
	DataDir string
	Log     *slog.Logger
	Clock   workload.Clock
	// Probe reports why size-limited volumes cannot be made on this
	// machine (nil when they can). Nil means the real check: root,
	// /dev/loop-control, and the e2fsprogs tools.
	Probe func() error
	// IDs allocates each deployment's range of host ids: a volume's data
	// is owned by the ids its deployment's containers run as. Containers
	// and volumes of one node share one allocator. Default: an allocator
	// over DataDir with idmap.DefaultPool.
	IDs *idmap.Allocator
}

// Manager runs volume workloads. It is safe for concurrent use.
type Manager struct {
	layout  layout
	log     *slog.Logger
	clock   workload.Clock
	loopErr error // why new volumes are plain directories; nil: ext4
	ids     *idmap.Allocator
	locks   workload.Locks

	mu     sync.Mutex
	busy   map[workload.Ref]int
	events workload.EventQueues
}

var (
	_ workload.Manager = (*Manager)(nil)
	_ workload.Mounter = (*Manager)(nil)
)

// New returns a manager over the volumes below cfg.DataDir, creating the
// directory if needed.
func New(cfg Config) (*Manager, error) {
	if cfg.DataDir == "" || cfg.Log == nil || cfg.Clock == nil {
		return nil, errors.New("volume: Config needs DataDir, Log and Clock")
	}
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	root := filepath.Join(abs, "workload", fmt.Sprintf("v%d", LayoutVersion), "volumes")
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("volume: %w", err)
	}
	probe := cfg.Probe
	if probe == nil {
		probe = probeLoop
	}
	m := &Manager{
		layout: layout{root: root}, log: cfg.Log, clock: cfg.Clock, loopErr: probe(), ids: cfg.IDs,
		busy: map[workload.Ref]int{},
	}
	if m.ids == nil {
		if m.ids, err = idmap.Open(abs, idmap.DefaultPool); err != nil {
			return nil, fmt.Errorf("volume: %w", err)
		}
	}
	// A crash between recording a holder and writing the record leaves a
	// holder without a volume.
	err = m.ids.Prune(spec.TypeVolume, func(dep uint64, name string) bool {
		_, err := os.Stat(m.layout.state(workload.Ref{Deployment: dep, Name: name}))
		return err == nil
	})
	if err != nil {
		return nil, fmt.Errorf("volume: %w", err)
	}
	if m.loopErr != nil {
		cfg.Log.Warn("volume sizes will not be enforced", "reason", m.loopErr)
	}
	return m, nil
}

// Unenforced says why this node makes new volumes as plain directories
// whose size is not enforced (what is missing, and the Debian package that
// provides it); nil when it makes size-limited ext4 volumes.
func (m *Manager) Unenforced() error { return m.loopErr }

// Type implements workload.Manager.
func (m *Manager) Type() string { return spec.TypeVolume }

// Close implements workload.Manager; volumes stay mounted.
func (m *Manager) Close() error { return nil }

// Provision implements workload.Manager.
func (m *Manager) Provision(ctx context.Context, d workload.Deployment, w spec.Workload) error {
	return m.converge(ctx, d, w, false)
}

// Update implements workload.Manager: a volume can grow, never shrink.
func (m *Manager) Update(ctx context.Context, d workload.Deployment, w spec.Workload) error {
	return m.converge(ctx, d, w, true)
}

func (m *Manager) converge(ctx context.Context, d workload.Deployment, w spec.Workload, mustExist bool) error {
	if err := check(w); err != nil {
		return err
	}
	ref := workload.Ref{Deployment: d.ID, Name: w.Name}
	defer m.enter(ref)()
	unlock := m.locks.Lock(ref)
	defer unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	rec, ok, err := m.layout.load(ref)
	switch {
	case err != nil:
		return fmt.Errorf("volume %s: %w", w.Name, err)
	case !ok && mustExist:
		return fmt.Errorf("volume %s: %w", w.Name, workload.ErrNotFound)
	case !ok:
		ids, err := m.ids.Acquire(d.ID, idmap.Holder(spec.TypeVolume, w.Name))
		if err != nil {
			return fmt.Errorf("volume %s: %w", w.Name, err)
		}
		rec = m.newRecord(d, w)
		rec.IDBase = ids.Base
		if err := m.layout.save(ref, rec); err != nil {
			return fmt.Errorf("volume %s: %w", w.Name, err)
		}
	case rec.Size > w.Resources.Disk:
		return &workload.PermanentError{Err: ErrShrink, Reason: fmt.Sprintf(
			"volume %s is %d bytes; it cannot shrink to %d (make a new volume and copy the data)", w.Name, rec.Size, w.Resources.Disk)}
	}
	if rec.Kind == KindDir {
		err = m.ensureDir(ref, rec, ok)
	} else {
		err = m.ensureExt4(ctx, ref, rec, w.Resources.Disk, ok)
	}
	if err != nil || rec.IDBase != 0 {
		return err
	}
	return m.shiftOwners(ctx, ref, rec)
}

// shiftOwners gives a volume made before containers ran in user
// namespaces (no id range in its record) to its deployment's range: every
// file's owner and group id i becomes the range's host id for i. It walks
// the whole volume once; a crash midway is finished at the next Provision
// (files already in the range are left alone).
func (m *Manager) shiftOwners(ctx context.Context, ref workload.Ref, rec record) error {
	ids, err := m.ids.Acquire(ref.Deployment, idmap.Holder(spec.TypeVolume, ref.Name))
	if err != nil {
		return fmt.Errorf("volume %s: %w", ref.Name, err)
	}
	n, err := shift(ctx, m.layout.data(ref, rec.Kind), ids)
	if err != nil {
		return fmt.Errorf("volume %s: give the files to the deployment's ids: %w", ref.Name, err)
	}
	rec.IDBase = ids.Base
	if err := m.layout.save(ref, rec); err != nil {
		return fmt.Errorf("volume %s: %w", ref.Name, err)
	}
	m.event(ref, eventlog.KindReady, fmt.Sprintf("gave its %d files to the deployment's user ids, which its containers now run as", n))
	return nil
}

// check validates a volume workload.
func check(w spec.Workload) error {
	if err := workload.CheckName(w.Name); err != nil {
		return err
	}
	if w.Type != spec.TypeVolume {
		return workload.Permanent(workload.ErrWrongType, "workload %s is a %q, not a volume", w.Name, w.Type)
	}
	if len(w.Config) > 0 {
		var c spec.VolumeConfig
		if err := w.DecodeConfig(&c); err != nil {
			return workload.Permanent(workload.ErrInvalid, "%v", err)
		}
	}
	if w.Resources.Disk < MinSize {
		return workload.Permanent(workload.ErrInvalid, "volume %s: resources.disk is %d bytes; a volume needs at least %d (4 MiB)",
			w.Name, w.Resources.Disk, MinSize)
	}
	return nil
}

func (m *Manager) newRecord(d workload.Deployment, w spec.Workload) record {
	rec := record{Version: LayoutVersion, Deployment: d.ID, Name: w.Name, Owner: d.Owner, Size: w.Resources.Disk, Kind: KindExt4}
	if m.loopErr != nil {
		rec.Kind, rec.Reason = KindDir, "size limit not enforced: "+m.loopErr.Error()
	}
	return rec
}

func (m *Manager) ensureDir(ref workload.Ref, rec record, existed bool) error {
	if err := m.ensureData(ref, rec); err != nil {
		return err
	}
	if !existed {
		m.event(ref, eventlog.KindDegraded, "created as a plain directory: size limit not enforced: "+m.loopErr.Error())
	}
	return nil
}

func (m *Manager) ensureExt4(ctx context.Context, ref workload.Ref, rec record, size uint64, existed bool) error {
	image, mnt := m.layout.image(ref), m.layout.mnt(ref)
	if _, err := os.Stat(image); errors.Is(err, os.ErrNotExist) {
		if err := makeImage(ctx, image, rec.Size); err != nil {
			return fmt.Errorf("volume %s: %w", ref.Name, err)
		}
		m.event(ref, eventlog.KindReady, fmt.Sprintf("created an ext4 volume of %d MiB", rec.Size>>20))
	}
	adopted, err := mountImage(ctx, image, mnt)
	if err != nil {
		return fmt.Errorf("volume %s: %w", ref.Name, err)
	}
	if existed && !adopted {
		m.event(ref, eventlog.KindReady, "mounted the existing volume")
	}
	if size > rec.Size {
		if err := grow(ctx, image, mnt, size); err != nil {
			return fmt.Errorf("volume %s: grow: %w", ref.Name, err)
		}
		m.event(ref, eventlog.KindReady, fmt.Sprintf("grown from %d to %d MiB", rec.Size>>20, size>>20))
		rec.Size = size
		if err := m.layout.save(ref, rec); err != nil {
			return fmt.Errorf("volume %s: %w", ref.Name, err)
		}
	}
	return m.ensureData(ref, rec)
}

// ensureData makes the directory containers mount, owned by the
// container root of the deployment's id range when it makes it; one that
// exists is left as it is (its containers may have given it to another of
// their ids).
func (m *Manager) ensureData(ref workload.Ref, rec record) error {
	dir := m.layout.data(ref, rec.Kind)
	if _, err := os.Lstat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return fmt.Errorf("volume %s: %w", ref.Name, err)
	}
	tmp := dir + ".new" // made whole, then renamed: a data directory is always owned right
	if err := os.RemoveAll(tmp); err != nil {
		return fmt.Errorf("volume %s: %w", ref.Name, err)
	}
	if err := os.Mkdir(tmp, 0o755); err != nil {
		return fmt.Errorf("volume %s: %w", ref.Name, err)
	}
	ids := idmap.Range{Base: rec.IDBase}
	if err := os.Lchown(tmp, ids.Host(0), ids.Host(0)); err != nil && !notRoot(err) {
		return fmt.Errorf("volume %s: %w", ref.Name, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("volume %s: %w", ref.Name, err)
	}
	return nil
}

// notRoot reports whether err is a chown refused because the agent is not
// root: then no container can run either, and ownership does not matter.
func notRoot(err error) bool { return errors.Is(err, fs.ErrPermission) && os.Geteuid() != 0 }
