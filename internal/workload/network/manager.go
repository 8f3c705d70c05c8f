package network

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"sync"

	"github.com/zerogrid/zerogrid/internal/eventlog"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
	"github.com/zerogrid/zerogrid/internal/workload/statefile"
)

// LayoutVersion is the version of the records' layout (part of the path).
const LayoutVersion = 1

// Config configures a Manager.
type Config struct {
	DataDir string
	Log     *slog.Logger
	Clock   workload.Clock
	Chain   string // chain id: part of every network's prefix
	NodeID  uint64 // this node: its subnet in every network
	Tools   Tools
	// OverlayDev is the overlay interface that carries packets to other
	// nodes; empty: members on other nodes are not reachable.
	OverlayDev string
}

// Manager runs network workloads. It is safe for concurrent use.
type Manager struct {
	cfg    Config
	root   string
	locks  workload.Locks
	events workload.EventQueues
	// claim serializes the creation of records, so that of two networks
	// with one prefix only the first gets one.
	claim sync.Mutex
}

// record is a network workload's state.json.
type record struct {
	Version    int          `json:"version"`
	Deployment uint64       `json:"deployment"`
	Name       string       `json:"name"`
	Owner      uint64       `json:"owner"`
	Net        netip.Prefix `json:"net"`
	Subnet     netip.Prefix `json:"subnet"`
}

// LayoutVersion implements statefile.Versioned.
func (r *record) LayoutVersion() int { return r.Version }

var (
	_ workload.Manager  = (*Manager)(nil)
	_ workload.Networks = (*Manager)(nil)
	_ workload.Admitter = (*Manager)(nil)
)

// New returns a manager keeping its records below cfg.DataDir.
func New(cfg Config) (*Manager, error) {
	if cfg.DataDir == "" || cfg.Log == nil || cfg.Clock == nil || cfg.Chain == "" || cfg.Tools.IP == "" || cfg.Tools.NFT == "" {
		return nil, errors.New("network: Config needs DataDir, Log, Clock, Chain and Tools")
	}
	if cfg.NodeID == 0 || cfg.NodeID > MaxNodeID {
		return nil, &workload.UnavailableError{Type: spec.TypeNetwork,
			Reason: fmt.Sprintf("node id %d has no subnet in private networks: only nodes 1..%d do", cfg.NodeID, MaxNodeID)}
	}
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	root := filepath.Join(abs, "workload", fmt.Sprintf("v%d", LayoutVersion), "networks")
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("network: %w", err)
	}
	return &Manager{cfg: cfg, root: root}, nil
}

func (m *Manager) dir(ref workload.Ref) string {
	return filepath.Join(m.root, strconv.FormatUint(ref.Deployment, 10), ref.Name)
}
func (m *Manager) state(ref workload.Ref) string { return filepath.Join(m.dir(ref), "state.json") }

func (m *Manager) load(ref workload.Ref) (record, bool, error) {
	var rec record
	ok, err := statefile.LoadVersion(m.state(ref), &rec, LayoutVersion)
	return rec, ok, err
}

// Type implements workload.Manager.
func (m *Manager) Type() string { return spec.TypeNetwork }

// List implements workload.Manager.
func (m *Manager) List(context.Context) ([]workload.Ref, error) {
	return workload.ListRecords(m.root, m.state)
}

// Close implements workload.Manager.
func (m *Manager) Close() error { return nil }

// Provision implements workload.Manager.
func (m *Manager) Provision(ctx context.Context, d workload.Deployment, w spec.Workload) error {
	return m.converge(ctx, d, w, false)
}

// Update implements workload.Manager; a network has nothing to change.
func (m *Manager) Update(ctx context.Context, d workload.Deployment, w spec.Workload) error {
	return m.converge(ctx, d, w, true)
}

func (m *Manager) converge(ctx context.Context, d workload.Deployment, w spec.Workload, mustExist bool) error {
	if err := check(w); err != nil {
		return err
	}
	ref := workload.Ref{Deployment: d.ID, Name: w.Name}
	unlock := m.locks.Lock(ref)
	defer unlock()
	_, ok, err := m.load(ref)
	switch {
	case err != nil:
		return fmt.Errorf("network %s: %w", w.Name, err)
	case !ok && mustExist:
		return fmt.Errorf("network %s: %w", w.Name, workload.ErrNotFound)
	}
	rec, err := m.newRecord(d, w)
	if err != nil {
		return err
	}
	if err := m.save(ref, rec, !ok); err != nil {
		return err
	}
	if err := m.ensureNode(ctx, rec); err != nil {
		return workload.Retryable(err, "network %s: %v", w.Name, err)
	}
	if !ok {
		m.event(ref, eventlog.KindReady, fmt.Sprintf("network %s: this node's subnet is %s", rec.Net, rec.Subnet))
	}
	return nil
}

// save writes ref's record; a new one only if no other network on this
// node has its prefix.
func (m *Manager) save(ref workload.Ref, rec record, isNew bool) error {
	m.claim.Lock()
	defer m.claim.Unlock()
	if isNew {
		if err := m.collision(ref, rec); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(m.dir(ref), 0o700); err != nil {
		return fmt.Errorf("network %s: %w", ref.Name, err)
	}
	if err := statefile.Save(m.state(ref), &rec); err != nil {
		return fmt.Errorf("network %s: %w", ref.Name, err)
	}
	return nil
}

// collision refuses rec, permanently, when a network of another owner or
// name on this node has its prefix: its containers would be addressed in
// the same /64s, which the overlay tells apart by prefix alone.
func (m *Manager) collision(ref workload.Ref, rec record) error {
	refs, err := m.List(context.Background())
	if err != nil {
		return fmt.Errorf("network %s: %w", ref.Name, err)
	}
	for _, r := range refs {
		if r == ref {
			continue
		}
		other, ok, err := m.load(r)
		if err != nil {
			return fmt.Errorf("network %s: %w", ref.Name, err)
		}
		if ok && other.Net == rec.Net && (other.Owner != rec.Owner || other.Name != rec.Name) {
			return workload.Permanent(workload.ErrInvalid,
				"network %s: its prefix %s is taken on this node by another network; rename the network or deploy to another node", ref.Name, rec.Net)
		}
	}
	return nil
}

// Admit implements workload.Admitter: it refuses a network whose prefix
// another network on this node already has.
func (m *Manager) Admit(_ context.Context, d workload.Deployment, w spec.Workload) error {
	if err := check(w); err != nil {
		return err
	}
	rec, err := m.newRecord(d, w)
	if err != nil {
		return err
	}
	ref := workload.Ref{Deployment: d.ID, Name: w.Name}
	if _, ok, err := m.load(ref); err != nil || ok {
		return err // it has its record: it holds the prefix
	}
	return m.collision(ref, rec)
}

func (m *Manager) newRecord(d workload.Deployment, w spec.Workload) (record, error) {
	netp, err := Prefix(m.cfg.Chain, d.Owner, w.Name)
	if err != nil {
		return record{}, workload.Permanent(workload.ErrInvalid, "network %s: %v", w.Name, err)
	}
	sub, err := NodeSubnet(netp, m.cfg.NodeID)
	if err != nil {
		return record{}, workload.Permanent(workload.ErrInvalid, "network %s: %v", w.Name, err)
	}
	return record{Version: LayoutVersion, Deployment: d.ID, Name: w.Name, Owner: d.Owner, Net: netp, Subnet: sub}, nil
}

// ensureNode sets up the node's side of a network: forwarding, the
// filter table, a route for the network's other nodes through the
// overlay, and an unreachable route for this node's subnet so a packet
// for a member that is gone is dropped here rather than sent back out.
func (m *Manager) ensureNode(ctx context.Context, rec record) error {
	if err := m.cfg.Tools.EnableForwarding(ctx); err != nil {
		return err
	}
	var uplinks []string
	routes := fmt.Sprintf("route replace unreachable %s\n", rec.Subnet)
	if m.cfg.OverlayDev != "" {
		uplinks = append(uplinks, m.cfg.OverlayDev)
		routes += fmt.Sprintf("route replace %s dev %s\n", rec.Net, m.cfg.OverlayDev)
	}
	if err := m.cfg.Tools.ensureBase(ctx, uplinks...); err != nil {
		return err
	}
	return m.cfg.Tools.ip(ctx, m.cfg.Tools.Netns, "-6", "-batch", "-", routes)
}

// check validates a network workload.
func check(w spec.Workload) error {
	if err := workload.CheckName(w.Name); err != nil {
		return err
	}
	if w.Type != spec.TypeNetwork {
		return workload.Permanent(workload.ErrWrongType, "workload %s is a %q, not a network", w.Name, w.Type)
	}
	if len(w.Config) > 0 {
		var c spec.NetworkConfig
		if err := w.DecodeConfig(&c); err != nil {
			return workload.Permanent(workload.ErrInvalid, "%v", err)
		}
	}
	return nil
}

// Deprovision implements workload.Manager. The node's routes for the
// network stay while another deployment on this node uses it.
func (m *Manager) Deprovision(ctx context.Context, d workload.Deployment, name string) error {
	if err := workload.CheckName(name); err != nil {
		return err
	}
	ref := workload.Ref{Deployment: d.ID, Name: name}
	unlock := m.locks.Lock(ref)
	defer unlock()
	rec, ok, err := m.load(ref)
	if err != nil {
		return fmt.Errorf("network %s: %w", name, err)
	}
	if ok && !m.inUse(rec.Net, ref) {
		routes := fmt.Sprintf("route del %s\n", rec.Subnet)
		if m.cfg.OverlayDev != "" {
			routes += fmt.Sprintf("route del %s dev %s\n", rec.Net, m.cfg.OverlayDev)
		}
		if err := m.cfg.Tools.ip(ctx, m.cfg.Tools.Netns, "-6", "-force", "-batch", "-", routes); err != nil {
			m.cfg.Log.Info("network routes already gone", "network", rec.Net.String(), "err", err)
		}
	}
	if err := os.RemoveAll(m.dir(ref)); err != nil {
		return fmt.Errorf("network %s: %w", name, err)
	}
	os.Remove(filepath.Dir(m.dir(ref)))
	m.events.Drop(ref)
	return nil
}

// inUse reports whether a network workload other than except has net.
func (m *Manager) inUse(net netip.Prefix, except workload.Ref) bool {
	refs, _ := m.List(context.Background())
	for _, r := range refs {
		if r == except {
			continue
		}
		if rec, ok, err := m.load(r); err == nil && ok && rec.Net == net {
			return true
		}
	}
	return false
}

// Observe implements workload.Manager.
func (m *Manager) Observe(ctx context.Context, d workload.Deployment, name string) (workload.Status, error) {
	if err := workload.CheckName(name); err != nil {
		return workload.Status{}, err
	}
	ref := workload.Ref{Deployment: d.ID, Name: name}
	rec, ok, err := m.load(ref)
	switch {
	case err != nil:
		return workload.Status{}, fmt.Errorf("network %s: %w", name, err)
	case !ok:
		return workload.Status{}, fmt.Errorf("network %s: %w", name, workload.ErrNotFound)
	}
	return workload.Status{State: workload.Ready, Addr: rec.Subnet.String(), Events: m.events.For(ref).Drain()}, nil
}

// Network implements workload.Networks: the network a container of
// deployment d joins.
func (m *Manager) Network(_ context.Context, d workload.Deployment, name string) (workload.NetAttach, error) {
	rec, ok, err := m.load(workload.Ref{Deployment: d.ID, Name: name})
	switch {
	case err != nil:
		return workload.NetAttach{}, fmt.Errorf("network %s: %w", name, err)
	case !ok:
		return workload.NetAttach{}, fmt.Errorf("network %s: %w", name, workload.ErrNotFound)
	}
	id, err := ID(m.cfg.Chain, rec.Owner, rec.Name)
	if err != nil {
		return workload.NetAttach{}, fmt.Errorf("network %s: %w", name, err)
	}
	return workload.NetAttach{Net: rec.Net, Subnet: rec.Subnet, ID: id}, nil
}

func (m *Manager) event(ref workload.Ref, kind, reason string) {
	m.events.For(ref).Add(m.cfg.Clock.Now(), kind, reason)
	m.cfg.Log.Info("network "+kind, "deployment", ref.Deployment, "name", ref.Name, "reason", reason)
}

// Hosted is a network this node serves.
type Hosted struct {
	Owner uint64
	Name  string
	Net   netip.Prefix
}

// Hosted lists the networks this node serves, once each.
func (m *Manager) Hosted() ([]Hosted, error) {
	refs, err := m.List(context.Background())
	if err != nil {
		return nil, err
	}
	var out []Hosted
	seen := map[netip.Prefix]bool{}
	for _, r := range refs {
		rec, ok, err := m.load(r)
		if err != nil || !ok || seen[rec.Net] {
			continue
		}
		seen[rec.Net] = true
		out = append(out, Hosted{Owner: rec.Owner, Name: rec.Name, Net: rec.Net})
	}
	return out, nil
}
