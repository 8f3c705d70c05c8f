package gatewayname

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"sync"
	"time"

	"github.com/zerogrid/zerogrid/internal/eventlog"
	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
	"github.com/zerogrid/zerogrid/internal/workload/statefile"
)

// LayoutVersion is the version of the records' layout (part of the path).
const LayoutVersion = 1

// nobody is the uid and gid tunnel clients run as by default.
const nobody = 65534

// Config configures a Manager.
type Config struct {
	DataDir string
	Log     *slog.Logger
	Clock   workload.Clock
	// Key is the node's identity key: each tunnel client gets it through
	// a pipe and signs its hellos with it (the gateways find the node's
	// key among the name's servers on the ledger).
	Key identity.PrivateKey
	// Command is the argv that starts a tunnel client, which runs
	// RunClient: `zgridd tunnel-client`.
	Command []string
	// UID and GID are the ids tunnel clients run as when the agent runs
	// as root (default 65534, nobody); a client of an agent that is not
	// root keeps the agent's ids.
	UID, GID uint32
	// StopTimeout is how long a tunnel client has to exit after SIGTERM
	// before SIGKILL (5 s).
	StopTimeout time.Duration
	// Resolve finds the tunnel address a gateway announced on the ledger,
	// for gateways a spec names by key only (a verified read). Nil: such
	// specs are refused. Addresses are looked up again every
	// ResolveEvery (10 s) while a workload's tunnels are not all up, and
	// a moved gateway restarts the tunnel client.
	Resolve      func(ctx context.Context, key identity.PublicKey) (string, error)
	ResolveEvery time.Duration
}

// Manager runs gateway-name workloads, each as a tunnel client process of
// its own (doc.go). It is safe for concurrent use.
type Manager struct {
	cfg    Config
	root   string
	locks  workload.Locks
	events workload.EventQueues
	recMu  sync.Mutex // serializes record read-modify-writes

	mu     sync.Mutex
	sups   map[workload.Ref]*supervisor
	busy   map[workload.Ref]int // Provisions and Updates in progress
	closed bool
}

// record is a workload's state.json.
type record struct {
	Version    int    `json:"version"`
	Deployment uint64 `json:"deployment"`
	Name       string `json:"name"`
	PublicName string `json:"public_name"`
	// Route is the hex routeHash of the route the client in Proc serves.
	Route string `json:"route,omitempty"`
	// Proc is the last tunnel client started, which may have exited.
	Proc     *procID `json:"proc,omitempty"`
	Restarts int     `json:"restarts"`
}

// LayoutVersion implements statefile.Versioned.
func (r *record) LayoutVersion() int { return r.Version }

var _ workload.Manager = (*Manager)(nil)

// New returns a manager keeping its records below cfg.DataDir. It starts
// nothing: Provision adopts or starts each workload's tunnel client.
func New(cfg Config) (*Manager, error) {
	if cfg.DataDir == "" || cfg.Log == nil || cfg.Clock == nil || cfg.Key.IsZero() || len(cfg.Command) == 0 {
		return nil, errors.New("gatewayname: Config needs DataDir, Log, Clock, Key and Command")
	}
	if os.Geteuid() != 0 {
		cfg.UID, cfg.GID = uint32(os.Geteuid()), uint32(os.Getegid())
	} else {
		if cfg.UID == 0 {
			cfg.UID = nobody
		}
		if cfg.GID == 0 {
			cfg.GID = nobody
		}
	}
	if cfg.ResolveEvery <= 0 {
		cfg.ResolveEvery = 10 * time.Second
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 5 * time.Second
	}
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	root := filepath.Join(abs, "workload", fmt.Sprintf("v%d", LayoutVersion), "gateway-names")
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("gatewayname: %w", err)
	}
	return &Manager{cfg: cfg, root: root, sups: map[workload.Ref]*supervisor{}, busy: map[workload.Ref]int{}}, nil
}

func (m *Manager) dir(ref workload.Ref) string {
	return filepath.Join(m.root, strconv.FormatUint(ref.Deployment, 10), ref.Name)
}
func (m *Manager) state(ref workload.Ref) string  { return filepath.Join(m.dir(ref), "state.json") }
func (m *Manager) health(ref workload.Ref) string { return filepath.Join(m.dir(ref), "health") }
func (m *Manager) logFile(ref workload.Ref) string {
	return filepath.Join(m.dir(ref), "log")
}

// Type implements workload.Manager.
func (m *Manager) Type() string { return spec.TypeGatewayName }

// List implements workload.Manager.
func (m *Manager) List(context.Context) ([]workload.Ref, error) {
	return workload.ListRecords(m.root, m.state)
}

// Close implements workload.Manager: it stops supervising and returns once
// every supervisor has ended; the tunnel clients keep running, and the
// next agent's Provision adopts them.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	sups := m.sups
	m.sups = map[workload.Ref]*supervisor{}
	m.mu.Unlock()
	for _, s := range sups {
		if p := s.stop(); p != nil {
			p.close()
		}
	}
	return nil
}

// Provision implements workload.Manager.
func (m *Manager) Provision(ctx context.Context, d workload.Deployment, w spec.Workload) error {
	return m.converge(ctx, d, w, false)
}

// Update implements workload.Manager: a changed route restarts the
// workload's tunnel client.
func (m *Manager) Update(ctx context.Context, d workload.Deployment, w spec.Workload) error {
	return m.converge(ctx, d, w, true)
}

func (m *Manager) converge(ctx context.Context, d workload.Deployment, w spec.Workload, mustExist bool) error {
	cfg, err := check(w)
	if err != nil {
		return err
	}
	ref := workload.Ref{Deployment: d.ID, Name: w.Name}
	m.mu.Lock()
	m.busy[ref]++
	m.mu.Unlock()
	defer func() {
		m.mu.Lock()
		if m.busy[ref]--; m.busy[ref] == 0 {
			delete(m.busy, ref)
		}
		m.mu.Unlock()
	}()
	unlock := m.locks.Lock(ref)
	defer unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	rec, ok, err := m.load(ref)
	switch {
	case err != nil:
		return err
	case !ok && mustExist:
		return fmt.Errorf("gateway-name %s: %w", w.Name, workload.ErrNotFound)
	}
	route, err := m.route(ctx, d, cfg)
	if err != nil {
		return err
	}
	sum, err := routeHash(route)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(m.dir(ref), 0o700); err != nil {
		return fmt.Errorf("gateway-name %s: %w", w.Name, err)
	}
	// The record comes first: the records list everything a manager may
	// have left on the machine.
	err = m.update(ref, func(r *record) {
		r.Version, r.Deployment, r.Name, r.PublicName = LayoutVersion, d.ID, w.Name, cfg.Name
	})
	if err != nil {
		return err
	}
	return m.ensure(ctx, ref, rec, route, hex.EncodeToString(sum[:]), cfg.Gateways)
}

// ensure makes a tunnel client serve route, under a supervisor: the one
// running already when it serves route, one started by a previous agent
// (adopted), or a new one.
func (m *Manager) ensure(ctx context.Context, ref workload.Ref, rec record, route handoverRoute, hash string, refs []spec.GatewayRef) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return workload.ErrClosed
	}
	s := m.sups[ref]
	m.mu.Unlock()
	if s != nil && s.hash == hash {
		return nil
	}
	var old *proc
	if s != nil {
		old = m.stopSupervisor(ref)
	} else if rec.Proc != nil {
		p, err := adopt(*rec.Proc)
		if err != nil {
			return fmt.Errorf("gateway-name %s: find its tunnel client: %w", ref.Name, err)
		}
		switch {
		case p != nil && rec.Route == hash:
			return m.supervise(ctx, ref, rec, route, hash, refs, p)
		case p != nil:
			old = p
		default:
			m.event(ref, eventlog.KindDegraded, "the tunnel client was gone when the agent started; starting it again")
		}
	}
	if old != nil {
		_, err := old.kill(m.cfg.StopTimeout)
		old.close()
		if err != nil {
			return fmt.Errorf("gateway-name %s: %w", ref.Name, err)
		}
		m.event(ref, eventlog.KindProvisioning, "route changed: tunnel client restarted")
	}
	return m.supervise(ctx, ref, rec, route, hash, refs, nil)
}

// supervise starts a supervisor for ref over adopted, or over a new
// client, and returns once that client has started.
func (m *Manager) supervise(ctx context.Context, ref workload.Ref, rec record, route handoverRoute, hash string, refs []spec.GatewayRef, adopted *proc) error {
	s := m.newSupervisor(ref, route, hash, rec.Restarts)
	if slices.ContainsFunc(refs, func(g spec.GatewayRef) bool { return g.Address == "" }) {
		s.keyed, s.resolved = refs, m.cfg.Clock.Now()
	}
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		if adopted != nil {
			adopted.close()
		}
		return workload.ErrClosed
	}
	m.sups[ref] = s
	m.mu.Unlock()
	first := make(chan error, 1)
	go s.run(adopted, first)
	select {
	case err := <-first:
		if err != nil {
			return workload.Retryable(err, "gateway-name %s: start its tunnel client: %s (retrying)", ref.Name, workload.Reason(err))
		}
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// stopSupervisor stops ref's supervisor, if any, and returns the client
// it watched, which keeps running.
func (m *Manager) stopSupervisor(ref workload.Ref) *proc {
	m.mu.Lock()
	s := m.sups[ref]
	delete(m.sups, ref)
	m.mu.Unlock()
	if s == nil {
		return nil
	}
	return s.stop()
}

// route resolves the backend container's address.
func (m *Manager) route(ctx context.Context, d workload.Deployment, cfg spec.GatewayNameConfig) (handoverRoute, error) {
	if d.Siblings == nil {
		return handoverRoute{}, workload.Permanent(workload.ErrInvalid, "gateway-name %s: no sibling workloads to forward to", cfg.Name)
	}
	addr, err := d.Siblings.Addr(ctx, cfg.Backend)
	if err != nil {
		return handoverRoute{}, err
	}
	mode := cfg.Mode
	if mode == "" {
		mode = spec.GatewayModeHTTP
	}
	r := handoverRoute{Name: cfg.Name, Mode: mode, Target: netip.AddrPortFrom(addr, cfg.Port).String(), Proxy: cfg.ProxyProtocol}
	for _, g := range cfg.Gateways {
		r.Gateways = append(r.Gateways, handoverGateway{Addr: g.Address, Key: g.Key})
	}
	return m.resolve(ctx, r, cfg.Gateways)
}

// resolve fills in the address of every gateway refs names by key only,
// from what it announced on the ledger.
func (m *Manager) resolve(ctx context.Context, r handoverRoute, refs []spec.GatewayRef) (handoverRoute, error) {
	r.Gateways = slices.Clone(r.Gateways)
	for i, g := range refs {
		if g.Address != "" {
			continue
		}
		if m.cfg.Resolve == nil {
			return r, workload.Permanent(workload.ErrInvalid, "gateway-name %s: gateway %s is named by key only, and this node cannot look gateways up", r.Name, g.Key)
		}
		addr, err := m.cfg.Resolve(ctx, g.Key)
		if err != nil {
			return r, workload.Retryable(err, "gateway-name %s: where is gateway %s? %s (retrying: it announces its address when it starts)", r.Name, g.Key, workload.Reason(err))
		}
		r.Gateways[i].Addr = addr
	}
	return r, nil
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

// Deprovision implements workload.Manager: it stops the tunnel client
// (SIGTERM, SIGKILL after StopTimeout), adopted or not, and removes the
// workload's directory.
func (m *Manager) Deprovision(ctx context.Context, d workload.Deployment, name string) error {
	if err := workload.CheckName(name); err != nil {
		return err
	}
	ref := workload.Ref{Deployment: d.ID, Name: name}
	unlock := m.locks.Lock(ref)
	defer unlock()
	p := m.stopSupervisor(ref)
	if p == nil {
		rec, ok, err := m.load(ref)
		if err != nil {
			return err
		}
		if ok && rec.Proc != nil {
			if p, err = adopt(*rec.Proc); err != nil {
				return fmt.Errorf("gateway-name %s: find its tunnel client: %w", name, err)
			}
		}
	}
	if p != nil {
		_, err := p.kill(m.cfg.StopTimeout)
		p.close()
		if err != nil {
			return fmt.Errorf("gateway-name %s: %w", name, err)
		}
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
// does yet or the client is (re)starting, each with the reason; Pending
// for a client a previous agent started until Provision adopts it.
func (m *Manager) Observe(ctx context.Context, d workload.Deployment, name string) (workload.Status, error) {
	if err := workload.CheckName(name); err != nil {
		return workload.Status{}, err
	}
	ref := workload.Ref{Deployment: d.ID, Name: name}
	rec, ok, err := m.load(ref)
	if err != nil {
		return workload.Status{}, err
	}
	m.mu.Lock()
	s, busy := m.sups[ref], m.busy[ref] > 0
	m.mu.Unlock()
	switch {
	case s == nil && busy:
		return workload.Status{State: workload.Provisioning, Reason: "being provisioned", Restarts: rec.Restarts, Events: m.events.For(ref).Drain()}, nil
	case !ok && s == nil:
		return workload.Status{}, fmt.Errorf("gateway-name %s: %w", name, workload.ErrNotFound)
	case s == nil:
		return workload.Status{State: workload.Pending, Reason: "tunnel client not adopted by this agent yet (Provision adopts it)",
			Restarts: rec.Restarts, Events: m.events.For(ref).Drain()}, nil
	}
	m.followGateways(ctx, ref, rec, s)
	pid, restarts, down := s.status()
	st := workload.Status{State: workload.Provisioning, Restarts: restarts}
	if pid == 0 {
		st.Reason = down
	} else {
		st.State, st.Reason = m.healthState(ref, pid)
		s.noteUp(st.State == workload.Ready || st.State == workload.Degraded)
	}
	if len(st.Reason) > workload.MaxReason {
		st.Reason = st.Reason[:workload.MaxReason]
	}
	st.Events = m.events.For(ref).Drain()
	return st, nil
}

// followGateways looks up again, at most every ResolveEvery while not all
// its tunnels are up, the gateways s's spec names by key, and restarts the
// tunnel client on the new addresses when one moved (a gateway restarted
// on another port).
func (m *Manager) followGateways(ctx context.Context, ref workload.Ref, rec record, s *supervisor) {
	if len(s.keyed) == 0 || !s.resolveDue(m.cfg.Clock.Now(), m.cfg.ResolveEvery) {
		return
	}
	if h, err := m.readHealth(ref); err == nil && h.Connected == h.Total && h.Total > 0 {
		return
	}
	route, err := m.resolve(ctx, s.route, s.keyed)
	if err != nil {
		m.cfg.Log.Warn("look up gateways", "name", ref.Name, "err", err)
		return
	}
	sum, err := routeHash(route)
	if err != nil || hex.EncodeToString(sum[:]) == s.hash {
		return
	}
	unlock := m.locks.Lock(ref)
	defer unlock()
	if err := m.ensure(ctx, ref, rec, route, hex.EncodeToString(sum[:]), s.keyed); err != nil {
		m.cfg.Log.Warn("follow a moved gateway", "name", ref.Name, "err", err)
	}
}

// healthState reads the health record of client pid.
func (m *Manager) healthState(ref workload.Ref, pid int) (workload.State, string) {
	h, err := m.readHealth(ref)
	switch {
	case err != nil:
		return workload.Provisioning, fmt.Sprintf("tunnel client (pid %d): %v", pid, err)
	case int(h.PID) != pid:
		return workload.Provisioning, fmt.Sprintf("tunnel client (pid %d) starting", pid)
	}
	if age := m.cfg.Clock.Now().Sub(time.Unix(h.Time, 0)); age > healthStale {
		return workload.Provisioning, fmt.Sprintf("tunnel client (pid %d) has not reported for %s", pid, age.Round(time.Second))
	}
	var state workload.State
	var reason string
	switch {
	case h.Connected == 0:
		state, reason = workload.Provisioning, fmt.Sprintf("no gateway connected yet (of %d)", h.Total)
	case h.Connected < h.Total:
		state, reason = workload.Degraded, fmt.Sprintf("%d of %d gateways connected", h.Connected, h.Total)
	default:
		return workload.Ready, ""
	}
	if h.Problem != "" {
		reason += ": " + h.Problem
	}
	return state, reason
}

// readHealth reads a client's health record; one caught while being
// written is read again.
func (m *Manager) readHealth(ref workload.Ref) (healthRecord, error) {
	f, err := os.Open(m.health(ref))
	if err != nil {
		return healthRecord{}, err
	}
	defer f.Close()
	b := make([]byte, healthSize)
	for range 5 {
		n, err := f.ReadAt(b, 0)
		if n < healthSize && err != nil {
			clear(b[n:])
		}
		h, ok, err := decodeHealth(b)
		switch {
		case errors.Is(err, errTorn):
			time.Sleep(time.Millisecond)
			continue
		case err != nil:
			return h, err
		case !ok:
			return h, errors.New("no health record yet")
		}
		return h, nil
	}
	return healthRecord{}, errTorn
}

// load reads ref's record.
func (m *Manager) load(ref workload.Ref) (record, bool, error) {
	var rec record
	ok, err := statefile.LoadVersion(m.state(ref), &rec, LayoutVersion)
	if err != nil {
		return rec, false, fmt.Errorf("gateway-name %s: %w", ref.Name, err)
	}
	return rec, ok, nil
}

// update changes ref's record, creating it when missing.
func (m *Manager) update(ref workload.Ref, f func(*record)) error {
	m.recMu.Lock()
	defer m.recMu.Unlock()
	rec, _, err := m.load(ref)
	if err != nil {
		return err
	}
	f(&rec)
	if err := statefile.Save(m.state(ref), &rec); err != nil {
		return fmt.Errorf("gateway-name %s: %w", ref.Name, err)
	}
	return nil
}

func (m *Manager) event(ref workload.Ref, kind, reason string) {
	m.events.For(ref).Add(m.cfg.Clock.Now(), kind, reason)
	m.cfg.Log.Info("gateway-name "+kind, "deployment", ref.Deployment, "name", ref.Name, "reason", reason)
}
