// Package idmap allocates the host user and group ids that containers'
// user namespaces map to. Each deployment gets a range of Size ids of its
// own: container id i of any of its containers is host id Base+i, so root
// in a container is an unprivileged id on the node, the files its
// containers and volumes write are owned by ids no other deployment has,
// and two deployments never share an id.
//
// The allocation of a deployment is a record on the node's disk,
// DATADIR/workload/v1/idmap/<deployment>.json, listing its holders (the
// workloads that use the range, "container/web", "volume/data"): a
// deployment keeps its range across agent restarts and reboots while any
// holder remains, and the range is free again once the last is released.
// Records are written before the workload that holds the range is created
// and removed after it is gone, so a crash leaves at most a holder whose
// workload does not exist, which Prune removes. Allocators over one data
// directory (the container and volume managers may each hold one) agree
// through a lock file.
package idmap

import (
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"

	"golang.org/x/sys/unix"

	"github.com/zerogrid/zerogrid/internal/workload"
	"github.com/zerogrid/zerogrid/internal/workload/statefile"
)

// Size is the number of ids of a range: container ids 0..65535, the ids
// images use (65534 is nobody).
const Size = 1 << 16

// Nobody is the container id that image files owned by an id outside the
// range get (65534, "nobody").
const Nobody = 65534

// LayoutVersion is the version of the records (part of their path).
const LayoutVersion = 1

// Range is Size host ids from Base: container id i is host id Base+i.
type Range struct {
	Base uint32
}

// Host returns the host id of container id id: Base+id, or the host id
// of Nobody for an id outside the range, so no id of another range is ever
// produced.
func (r Range) Host(id int) int {
	if id < 0 || id >= Size {
		id = Nobody
	}
	return int(r.Base) + id
}

// Pool is where ranges are cut from: Count ranges of Size ids from First.
type Pool struct {
	First uint32
	Count int
}

// DefaultPool lies above systemd's container range (524288-1879048191),
// below its foreign range (0x7FFE0000) and below 2^31, which some tools
// misread as negative: 4094 ranges.
var DefaultPool = Pool{First: 0x70000000, Count: 4094}

// Check reports whether p lies within the ids a range may use: above the
// first Size ids (which hold the node's own users) and below 2^32-1.
func (p Pool) Check() error {
	end := uint64(p.First) + uint64(p.Count)*Size
	if p.Count <= 0 || p.First%Size != 0 || p.First < Size || end > math.MaxUint32 {
		return fmt.Errorf("id pool %d:%d: want COUNT > 0 ranges of %d ids from FIRST, a multiple of %d above %d, ending below 2^32-1",
			p.First, p.Count, Size, Size, Size)
	}
	return nil
}

// ErrExhausted is returned when every range of the pool is held.
var ErrExhausted = errors.New("no free id range")

// Allocator hands out ranges. It is safe for concurrent use, and several
// allocators over one directory (in one process or not) stay consistent.
type Allocator struct {
	dir  string
	pool Pool
	mu   sync.Mutex
}

// Open returns an allocator keeping its records below dataDir.
func Open(dataDir string, pool Pool) (*Allocator, error) {
	if err := pool.Check(); err != nil {
		return nil, err
	}
	abs, err := filepath.Abs(dataDir)
	if err != nil {
		return nil, err
	}
	dir := filepath.Join(abs, "workload", fmt.Sprintf("v%d", LayoutVersion), "idmap")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("idmap: %w", err)
	}
	return &Allocator{dir: dir, pool: pool}, nil
}

// record is a deployment's allocation, <deployment>.json.
type record struct {
	Version    int      `json:"version"`
	Deployment uint64   `json:"deployment"`
	Base       uint32   `json:"base"`
	Holders    []string `json:"holders"` // sorted, each once
}

// LayoutVersion implements statefile.Versioned.
func (r *record) LayoutVersion() int { return r.Version }

// holderRE is "<type>/<workload name>".
var holderRE = regexp.MustCompile(`^[a-z-]{1,32}/[a-z0-9][a-z0-9_-]{0,35}$`)

// check refuses a record that could map a container onto ids it must not
// have: a base off the grid of ranges, in the node's own first ids, or
// running past 2^32-1; or one that is not the deployment's.
func (r *record) check(deployment uint64) error {
	switch {
	case r.Deployment != deployment:
		return fmt.Errorf("record of deployment %d in the file of %d", r.Deployment, deployment)
	case r.Base%Size != 0 || r.Base < Size || uint64(r.Base)+Size > math.MaxUint32:
		return fmt.Errorf("base %d is not a range of %d ids above %d", r.Base, Size, Size)
	case !slices.IsSorted(r.Holders) || len(slices.Compact(slices.Clone(r.Holders))) != len(r.Holders):
		return errors.New("holders are not sorted and unique")
	}
	for _, h := range r.Holders {
		if !holderRE.MatchString(h) {
			return fmt.Errorf("holder %q is not TYPE/NAME", h)
		}
	}
	return nil
}

func (a *Allocator) path(deployment uint64) string {
	return filepath.Join(a.dir, strconv.FormatUint(deployment, 10)+".json")
}

func (a *Allocator) load(deployment uint64) (record, bool, error) {
	var rec record
	ok, err := statefile.LoadVersion(a.path(deployment), &rec, LayoutVersion)
	if err == nil && ok {
		err = rec.check(deployment)
	}
	if err != nil {
		return record{}, false, fmt.Errorf("idmap: %s: %w", a.path(deployment), err)
	}
	return rec, ok, nil
}

// lock serializes the allocators over a.dir: a mutex in this process, an
// exclusive flock across processes.
func (a *Allocator) lock() (unlock func(), err error) {
	a.mu.Lock()
	f, err := os.OpenFile(filepath.Join(a.dir, "lock"), os.O_RDWR|os.O_CREATE, 0o600)
	if err == nil {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		a.mu.Unlock()
		return nil, fmt.Errorf("idmap: lock: %w", err)
	}
	return func() { f.Close(); a.mu.Unlock() }, nil
}

// Acquire returns deployment's range, allocating the lowest free one of
// the pool if it has none, and records holder as a user of it. It is
// idempotent. With every range held it fails with a retryable error
// wrapping ErrExhausted.
func (a *Allocator) Acquire(deployment uint64, holder string) (Range, error) {
	if !holderRE.MatchString(holder) {
		return Range{}, fmt.Errorf("idmap: holder %q is not TYPE/NAME", holder)
	}
	unlock, err := a.lock()
	if err != nil {
		return Range{}, err
	}
	defer unlock()
	rec, ok, err := a.load(deployment)
	if err != nil {
		return Range{}, err
	}
	if !ok {
		base, err := a.free()
		if err != nil {
			return Range{}, err
		}
		rec = record{Version: LayoutVersion, Deployment: deployment, Base: base}
	}
	if i, found := slices.BinarySearch(rec.Holders, holder); !found {
		rec.Holders = slices.Insert(rec.Holders, i, holder)
		if err := statefile.Save(a.path(deployment), &rec); err != nil {
			return Range{}, fmt.Errorf("idmap: %w", err)
		}
	}
	return Range{Base: rec.Base}, nil
}

// free returns the lowest base of the pool no record holds.
func (a *Allocator) free() (uint32, error) {
	recs, err := a.all()
	if err != nil {
		return 0, err
	}
	taken := map[uint32]bool{}
	for _, r := range recs {
		taken[r.Base] = true
	}
	for i := range a.pool.Count {
		if base := a.pool.First + uint32(i)*Size; !taken[base] {
			return base, nil
		}
	}
	return 0, workload.Retryable(ErrExhausted, "all %d user-id ranges of this node are held by deployments; one frees when a deployment with containers or volumes ends", a.pool.Count)
}

// all reads every record.
func (a *Allocator) all() ([]record, error) {
	ents, err := os.ReadDir(a.dir)
	if err != nil {
		return nil, fmt.Errorf("idmap: %w", err)
	}
	var out []record
	for _, e := range ents {
		id, ok := strings.CutSuffix(e.Name(), ".json")
		if !ok {
			continue
		}
		dep, err := strconv.ParseUint(id, 10, 64)
		if err != nil || strconv.FormatUint(dep, 10) != id {
			continue
		}
		rec, ok, err := a.load(dep)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, rec)
		}
	}
	return out, nil
}

// Lookup returns deployment's range, if it has one.
func (a *Allocator) Lookup(deployment uint64) (Range, bool, error) {
	unlock, err := a.lock()
	if err != nil {
		return Range{}, false, err
	}
	defer unlock()
	rec, ok, err := a.load(deployment)
	return Range{Base: rec.Base}, ok, err
}

// Release records that holder no longer uses deployment's range; the
// range is free once it has no holder. Releasing what is not held is fine.
func (a *Allocator) Release(deployment uint64, holder string) error {
	unlock, err := a.lock()
	if err != nil {
		return err
	}
	defer unlock()
	return a.release(deployment, holder)
}

func (a *Allocator) release(deployment uint64, holder string) error {
	rec, ok, err := a.load(deployment)
	if err != nil || !ok {
		return err
	}
	i, found := slices.BinarySearch(rec.Holders, holder)
	if !found {
		return nil
	}
	rec.Holders = slices.Delete(rec.Holders, i, i+1)
	if len(rec.Holders) == 0 {
		if err := os.Remove(a.path(deployment)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return fmt.Errorf("idmap: %w", err)
		}
		return nil
	}
	if err := statefile.Save(a.path(deployment), &rec); err != nil {
		return fmt.Errorf("idmap: %w", err)
	}
	return nil
}

// Prune releases the holders of type typ ("container") whose workload
// exists no more: exists(deployment, name) is false. A manager calls it
// when it starts, before it creates anything, to drop what a crash
// between recording a holder and creating its workload left behind.
func (a *Allocator) Prune(typ string, exists func(deployment uint64, name string) bool) error {
	unlock, err := a.lock()
	if err != nil {
		return err
	}
	defer unlock()
	recs, err := a.all()
	if err != nil {
		return err
	}
	for _, rec := range recs {
		for _, h := range rec.Holders {
			t, name, _ := strings.Cut(h, "/")
			if t != typ || exists(rec.Deployment, name) {
				continue
			}
			if err := a.release(rec.Deployment, h); err != nil {
				return err
			}
		}
	}
	return nil
}

// Holder is the holder name of workload name of type typ.
func Holder(typ, name string) string { return typ + "/" + name }
