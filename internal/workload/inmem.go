package workload

import (
	"context"
	"fmt"
	"slices"
	"sync"

	"github.com/zerogrid/zerogrid/internal/eventlog"
	"github.com/zerogrid/zerogrid/internal/spec"
)

// Inmem is a Manager that keeps its workloads in memory, for tests of the
// reconciler (after raft's inmem_store.go). It checks what the real
// managers check at the seam: the workload type, a container's image
// reference and that every volume it mounts resolves through
// Deployment.Siblings. Test hooks inject failures and crashes and count
// what was done, so a test can assert "nothing was duplicated".
//
// Inmem implements Mounter, so it can stand in for the volume manager. It is
// safe for concurrent use.
type Inmem struct {
	typ   string
	clock Clock
	node  *inmemNode
}

// inmemNode is what survives Restart: the "machine" the workloads run on.
type inmemNode struct {
	mu     sync.Mutex
	items  map[Ref]*inmemItem
	faults map[Ref][]error
	counts map[Ref]*Counts
}

type inmemItem struct {
	w      spec.Workload
	hash   [32]byte
	status Status
	events *EventQueue
}

// Counts is what an Inmem did to one workload.
type Counts struct {
	Creates, Updates, Removes int
}

var (
	_ Manager = (*Inmem)(nil)
	_ Mounter = (*Inmem)(nil)
)

// NewInmem returns an empty in-memory manager for workloads of type typ.
func NewInmem(typ string, clock Clock) *Inmem {
	return &Inmem{typ: typ, clock: clock, node: &inmemNode{
		items: map[Ref]*inmemItem{}, faults: map[Ref][]error{}, counts: map[Ref]*Counts{},
	}}
}

// Restart returns a new manager over the same workloads, as after an agent
// restart: workloads and their restart counts survive, pending events do
// not.
func (m *Inmem) Restart() *Inmem {
	m.node.mu.Lock()
	defer m.node.mu.Unlock()
	for _, it := range m.node.items {
		it.events = &EventQueue{}
	}
	return &Inmem{typ: m.typ, clock: m.clock, node: m.node}
}

// Type implements Manager.
func (m *Inmem) Type() string { return m.typ }

// Provision implements Manager.
func (m *Inmem) Provision(ctx context.Context, d Deployment, w spec.Workload) error {
	return m.converge(ctx, d, w, false)
}

// Update implements Manager.
func (m *Inmem) Update(ctx context.Context, d Deployment, w spec.Workload) error {
	return m.converge(ctx, d, w, true)
}

func (m *Inmem) converge(ctx context.Context, d Deployment, w spec.Workload, mustExist bool) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	if err := m.check(ctx, d, w); err != nil {
		return err
	}
	h, err := Hash(w)
	if err != nil {
		return Permanent(ErrInvalid, "workload %s: %v", w.Name, err)
	}
	ref := Ref{d.ID, w.Name}
	n := m.node
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.fault(ref); err != nil {
		return err
	}
	it, ok := n.items[ref]
	switch {
	case !ok && mustExist:
		return fmt.Errorf("update %s: %w", w.Name, ErrNotFound)
	case !ok:
		it = &inmemItem{events: &EventQueue{}}
		n.items[ref] = it
		n.count(ref).Creates++
	case it.hash == h:
		return nil
	default:
		n.count(ref).Updates++
	}
	it.w, it.hash = w, h
	it.status = Status{State: Ready, Restarts: it.status.Restarts}
	it.events.Add(m.clock.Now(), eventlog.KindReady, "provisioned")
	return nil
}

// check validates w as the real managers would.
func (m *Inmem) check(ctx context.Context, d Deployment, w spec.Workload) error {
	if err := CheckName(w.Name); err != nil {
		return err
	}
	if w.Type != m.typ {
		return Permanent(ErrWrongType, "workload %s is a %q, this manager runs %q", w.Name, w.Type, m.typ)
	}
	if w.Type != spec.TypeContainer {
		return nil
	}
	var c spec.ContainerConfig
	if err := w.DecodeConfig(&c); err != nil {
		return Permanent(ErrInvalid, "%v", err)
	}
	if !spec.ValidImageRef(c.Image) {
		return Permanent(ErrInvalid, "workload %s: image %q is not HOST/REPO@sha256:HEX", w.Name, c.Image)
	}
	for _, mt := range c.Mounts {
		if d.Siblings == nil {
			return Permanent(ErrInvalid, "workload %s mounts %q but the deployment has no siblings", w.Name, mt.Volume)
		}
		if _, err := d.Siblings.HostPath(ctx, mt.Volume); err != nil {
			return err
		}
	}
	return nil
}

// Deprovision implements Manager.
func (m *Inmem) Deprovision(ctx context.Context, d Deployment, name string) error {
	if err := ctx.Err(); err != nil {
		return err
	}
	ref := Ref{d.ID, name}
	n := m.node
	n.mu.Lock()
	defer n.mu.Unlock()
	if err := n.fault(ref); err != nil {
		return err
	}
	if _, ok := n.items[ref]; ok {
		delete(n.items, ref)
		n.count(ref).Removes++
	}
	return nil
}

// Observe implements Manager.
func (m *Inmem) Observe(ctx context.Context, d Deployment, name string) (Status, error) {
	n := m.node
	n.mu.Lock()
	defer n.mu.Unlock()
	it, ok := n.items[Ref{d.ID, name}]
	if !ok {
		return Status{}, fmt.Errorf("observe %s: %w", name, ErrNotFound)
	}
	st := it.status
	st.Events = it.events.Drain()
	return st, nil
}

// List implements Manager.
func (m *Inmem) List(ctx context.Context) ([]Ref, error) {
	n := m.node
	n.mu.Lock()
	defer n.mu.Unlock()
	refs := make([]Ref, 0, len(n.items))
	for r := range n.items {
		refs = append(refs, r)
	}
	slices.SortFunc(refs, compareRefs)
	return refs, nil
}

// Close implements Manager. It does nothing: workloads outlive managers.
func (m *Inmem) Close() error { return nil }

// HostPath implements Mounter with a made-up path, for volume and qsfs
// managers only.
func (m *Inmem) HostPath(ctx context.Context, d Deployment, name string) (string, error) {
	if m.typ != spec.TypeVolume && m.typ != spec.TypeQSFS {
		return "", Permanent(ErrInvalid, "workload %q is a %s, which cannot be mounted", name, m.typ)
	}
	n := m.node
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, ok := n.items[Ref{d.ID, name}]; !ok {
		return "", fmt.Errorf("%s: %w", name, ErrNotFound)
	}
	return fmt.Sprintf("/inmem/%d/%s", d.ID, name), nil
}

func compareRefs(a, b Ref) int {
	if a.Deployment != b.Deployment {
		if a.Deployment < b.Deployment {
			return -1
		}
		return 1
	}
	switch {
	case a.Name < b.Name:
		return -1
	case a.Name > b.Name:
		return 1
	}
	return 0
}
