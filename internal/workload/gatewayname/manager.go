package gatewayname

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

// Route is what one workload's tunnels carry.
type Route struct {
	Name          string // the gateway name
	Mode          string // spec.GatewayModeHTTP or spec.GatewayModePassthrough
	Target        netip.AddrPort
	ProxyProtocol bool
	Gateways      []spec.GatewayRef
}

// Health is a tunnel client's view of its gateways.
type Health struct {
	Connected int    // gateways with a tunnel up
	Total     int    // gateways listed
	Problem   string // the latest reason a gateway is not connected, or ""
}

// Tunnel is one running tunnel client.
type Tunnel interface {
	// Run keeps the tunnels up until ctx ends.
	Run(ctx context.Context) error
	Health() Health
}

// Config configures a Manager.
type Config struct {
	DataDir string
	Log     *slog.Logger
	Clock   workload.Clock
	// Open builds the tunnel client for a route; see NewTunnel.
	Open func(Route) (Tunnel, error)
}

// Manager runs gateway-name workloads. It is safe for concurrent use.
type Manager struct {
	cfg    Config
	root   string
	locks  workload.Locks
	events workload.EventQueues

	mu      sync.Mutex
	running map[workload.Ref]*running
	closed  bool
}

// running is one workload's tunnel client goroutine.
type running struct {
	route  Route
	tunnel Tunnel
	cancel context.CancelFunc
	done   chan struct{}
	up     bool // seen connected, for the Ready event
}

// record is a workload's state.json.
type record struct {
	Version    int    `json:"version"`
	Deployment uint64 `json:"deployment"`
	Name       string `json:"name"`
	PublicName string `json:"public_name"`
}

// LayoutVersion implements statefile.Versioned.
func (r *record) LayoutVersion() int { return r.Version }

var _ workload.Manager = (*Manager)(nil)

// New returns a manager keeping its records below cfg.DataDir.
func New(cfg Config) (*Manager, error) {
	if cfg.DataDir == "" || cfg.Log == nil || cfg.Clock == nil || cfg.Open == nil {
		return nil, errors.New("gatewayname: Config needs DataDir, Log, Clock and Open")
	}
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	root := filepath.Join(abs, "workload", fmt.Sprintf("v%d", LayoutVersion), "gateway-names")
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("gatewayname: %w", err)
	}
	return &Manager{cfg: cfg, root: root, running: map[workload.Ref]*running{}}, nil
}

func (m *Manager) dir(ref workload.Ref) string {
	return filepath.Join(m.root, strconv.FormatUint(ref.Deployment, 10), ref.Name)
}
func (m *Manager) state(ref workload.Ref) string { return filepath.Join(m.dir(ref), "state.json") }

// Type implements workload.Manager.
func (m *Manager) Type() string { return spec.TypeGatewayName }

// List implements workload.Manager.
func (m *Manager) List(context.Context) ([]workload.Ref, error) {
	return workload.ListRecords(m.root, m.state)
}

// Close implements workload.Manager: it stops every tunnel (they live in
// this process); the next agent's Provision starts them again.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	rs := m.running
	m.running = map[workload.Ref]*running{}
	m.mu.Unlock()
	for _, r := range rs {
		r.stop()
	}
	return nil
}

func (r *running) stop() {
	r.cancel()
	<-r.done
}

// Provision implements workload.Manager.
func (m *Manager) Provision(ctx context.Context, d workload.Deployment, w spec.Workload) error {
	return m.converge(ctx, d, w, false)
}

// Update implements workload.Manager: a changed route restarts the
// workload's tunnels.
func (m *Manager) Update(ctx context.Context, d workload.Deployment, w spec.Workload) error {
	return m.converge(ctx, d, w, true)
}

func (m *Manager) converge(ctx context.Context, d workload.Deployment, w spec.Workload, mustExist bool) error {
	cfg, err := check(w)
	if err != nil {
		return err
	}
	ref := workload.Ref{Deployment: d.ID, Name: w.Name}
	unlock := m.locks.Lock(ref)
	defer unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	var rec record
	ok, err := statefile.LoadVersion(m.state(ref), &rec, LayoutVersion)
	switch {
	case err != nil:
		return fmt.Errorf("gateway-name %s: %w", w.Name, err)
	case !ok && mustExist:
		return fmt.Errorf("gateway-name %s: %w", w.Name, workload.ErrNotFound)
	}
	route, err := m.route(ctx, d, cfg)
	if err != nil {
		return err
	}
	rec = record{Version: LayoutVersion, Deployment: d.ID, Name: w.Name, PublicName: cfg.Name}
	if err := os.MkdirAll(m.dir(ref), 0o700); err != nil {
		return fmt.Errorf("gateway-name %s: %w", w.Name, err)
	}
	if err := statefile.Save(m.state(ref), &rec); err != nil {
		return fmt.Errorf("gateway-name %s: %w", w.Name, err)
	}
	return m.start(ref, route)
}

// route resolves the backend container's address.
func (m *Manager) route(ctx context.Context, d workload.Deployment, cfg spec.GatewayNameConfig) (Route, error) {
	if d.Siblings == nil {
		return Route{}, workload.Permanent(workload.ErrInvalid, "gateway-name %s: no sibling workloads to forward to", cfg.Name)
	}
	addr, err := d.Siblings.Addr(ctx, cfg.Backend)
	if err != nil {
		return Route{}, err
	}
	mode := cfg.Mode
	if mode == "" {
		mode = spec.GatewayModeHTTP
	}
	return Route{Name: cfg.Name, Mode: mode, Target: netip.AddrPortFrom(addr, cfg.Port),
		ProxyProtocol: cfg.ProxyProtocol, Gateways: cfg.Gateways}, nil
}

// start runs the route's tunnel client unless it already runs the same
// route.
func (m *Manager) start(ref workload.Ref, route Route) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return workload.ErrClosed
	}
	old := m.running[ref]
	if old != nil && sameRoute(old.route, route) {
		m.mu.Unlock()
		return nil
	}
	delete(m.running, ref)
	m.mu.Unlock()
	if old != nil {
		old.stop()
		m.event(ref, eventlog.KindProvisioning, "route changed: tunnels restarted")
	}
	t, err := m.cfg.Open(route)
	if err != nil {
		return workload.Permanent(workload.ErrInvalid, "gateway-name %s: %v", route.Name, err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	r := &running{route: route, tunnel: t, cancel: cancel, done: make(chan struct{})}
	go func() {
		defer close(r.done)
		if err := t.Run(ctx); err != nil && ctx.Err() == nil {
			m.cfg.Log.Warn("gateway tunnel stopped", "deployment", ref.Deployment, "name", ref.Name, "err", err)
		}
	}()
	m.mu.Lock()
	m.running[ref] = r
	m.mu.Unlock()
	m.cfg.Log.Info("gateway tunnels started", "deployment", ref.Deployment, "name", ref.Name,
		"public_name", route.Name, "target", route.Target.String(), "gateways", len(route.Gateways))
	return nil
}

func sameRoute(a, b Route) bool {
	if a.Name != b.Name || a.Mode != b.Mode || a.Target != b.Target || a.ProxyProtocol != b.ProxyProtocol || len(a.Gateways) != len(b.Gateways) {
		return false
	}
	for i := range a.Gateways {
		if a.Gateways[i] != b.Gateways[i] {
			return false
		}
	}
	return true
}

// check validates a gateway-name workload and returns its config.
func check(w spec.Workload) (spec.GatewayNameConfig, error) {
	var cfg spec.GatewayNameConfig
	if err := workload.CheckName(w.Name); err != nil {
		return cfg, err
	}
	if w.Type != spec.TypeGatewayName {
		return cfg, workload.Permanent(workload.ErrWrongType, "workload %s is a %q, not a gateway-name", w.Name, w.Type)
	}
	if err := w.DecodeConfig(&cfg); err != nil {
		return cfg, workload.Permanent(workload.ErrInvalid, "%v", err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, workload.Permanent(workload.ErrInvalid, "gateway-name %s: %v", w.Name, err)
	}
	return cfg, nil
}

// Deprovision implements workload.Manager.
func (m *Manager) Deprovision(ctx context.Context, d workload.Deployment, name string) error {
	if err := workload.CheckName(name); err != nil {
		return err
	}
	ref := workload.Ref{Deployment: d.ID, Name: name}
	unlock := m.locks.Lock(ref)
	defer unlock()
	m.mu.Lock()
	r := m.running[ref]
	delete(m.running, ref)
	m.mu.Unlock()
	if r != nil {
		r.stop()
	}
	if err := os.RemoveAll(m.dir(ref)); err != nil {
		return fmt.Errorf("gateway-name %s: %w", name, err)
	}
	os.Remove(filepath.Dir(m.dir(ref))) // the deployment's directory, when empty
	m.events.Drop(ref)
	return nil
}

// Observe implements workload.Manager: Ready while every listed gateway
// has a tunnel up, Degraded while only some do, Provisioning while none
// does yet, each with the reason a gateway is not connected.
func (m *Manager) Observe(ctx context.Context, d workload.Deployment, name string) (workload.Status, error) {
	if err := workload.CheckName(name); err != nil {
		return workload.Status{}, err
	}
	ref := workload.Ref{Deployment: d.ID, Name: name}
	var rec record
	ok, err := statefile.LoadVersion(m.state(ref), &rec, LayoutVersion)
	if err != nil {
		return workload.Status{}, fmt.Errorf("gateway-name %s: %w", name, err)
	}
	m.mu.Lock()
	r := m.running[ref]
	m.mu.Unlock()
	switch {
	case !ok && r == nil:
		return workload.Status{}, fmt.Errorf("gateway-name %s: %w", name, workload.ErrNotFound)
	case r == nil:
		return workload.Status{State: workload.Pending, Reason: "tunnels not started yet", Events: m.events.For(ref).Drain()}, nil
	}
	h := r.tunnel.Health()
	st := workload.Status{State: workload.Ready}
	switch {
	case h.Connected == 0:
		st.State, st.Reason = workload.Provisioning, fmt.Sprintf("no gateway connected yet (of %d)", h.Total)
	case h.Connected < h.Total:
		st.State, st.Reason = workload.Degraded, fmt.Sprintf("%d of %d gateways connected", h.Connected, h.Total)
	}
	if h.Problem != "" && st.State != workload.Ready {
		st.Reason += ": " + h.Problem
	}
	if len(st.Reason) > workload.MaxReason {
		st.Reason = st.Reason[:workload.MaxReason]
	}
	m.noteUp(ref, r, h)
	st.Events = m.events.For(ref).Drain()
	return st, nil
}

// noteUp records an event when the tunnels first come up, and when all
// are lost.
func (m *Manager) noteUp(ref workload.Ref, r *running, h Health) {
	m.mu.Lock()
	was := r.up
	r.up = h.Connected > 0
	m.mu.Unlock()
	switch {
	case r.up && !was:
		m.event(ref, eventlog.KindReady, fmt.Sprintf("serving %s through %d of %d gateways", r.route.Name, h.Connected, h.Total))
	case !r.up && was:
		m.event(ref, eventlog.KindDegraded, "all gateway tunnels down: "+h.Problem)
	}
}

func (m *Manager) event(ref workload.Ref, kind, reason string) {
	m.events.For(ref).Add(m.cfg.Clock.Now(), kind, reason)
	m.cfg.Log.Info("gateway-name "+kind, "deployment", ref.Deployment, "name", ref.Name, "reason", reason)
}
