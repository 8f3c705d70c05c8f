package zdb

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
	"time"

	"github.com/zerogrid/zerogrid/internal/eventlog"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
	"github.com/zerogrid/zerogrid/internal/workload/statefile"
)

// LayoutVersion is the version of the manager's records (part of the path).
const LayoutVersion = 1

// DefaultPort is the port zdb workloads are served on.
const DefaultPort = 9900

// NamespaceName is the 0-db namespace of workload name of contract id:
// every node and client derives it from the ledger alone.
func NamespaceName(contract uint64, name string) string {
	return "c" + strconv.FormatUint(contract, 10) + "-" + name
}

// Config configures a Manager.
type Config struct {
	DataDir string
	Log     *slog.Logger
	Clock   workload.Clock
	// Command is the argv that starts the server, `zgridd zdb`; the
	// manager adds --listen and --dir and passes the admin password in
	// the environment (ZGRID_ZDB_ADMIN).
	Command []string
	// Listen is where the server listens: the node's overlay address and
	// a port (DefaultPort).
	Listen netip.AddrPort
	// CheckEvery is how often the server is checked and started again
	// when it is gone (2 s).
	CheckEvery time.Duration
	// StopTimeout is how long the server has after SIGTERM (10 s).
	StopTimeout time.Duration
}

// Manager runs zdb workloads (doc.go). It is safe for concurrent use.
type Manager struct {
	cfg    Config
	root   string
	locks  workload.Locks
	events workload.EventQueues
	srv    *server

	mu   sync.Mutex
	busy map[workload.Ref]int
	// life is held shared while a workload needs the server (Provision,
	// the watcher) and exclusively while the last one's Deprovision stops
	// it, so the server is never stopped under a workload being set up.
	life sync.RWMutex

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// record is a workload's state.json.
type record struct {
	Version    int    `json:"version"`
	Deployment uint64 `json:"deployment"`
	Name       string `json:"name"`
	Namespace  string `json:"namespace"`
	MaxSize    uint64 `json:"max_size"`
	Mode       string `json:"mode"`
}

// LayoutVersion implements statefile.Versioned.
func (r *record) LayoutVersion() int { return r.Version }

var _ workload.Manager = (*Manager)(nil)

// New returns a manager keeping its records below cfg.DataDir. It starts
// a goroutine that keeps the server running while there are zdb
// workloads; Close stops it (the server keeps running).
func New(cfg Config) (*Manager, error) {
	if cfg.DataDir == "" || cfg.Log == nil || cfg.Clock == nil || len(cfg.Command) == 0 || !cfg.Listen.IsValid() {
		return nil, errors.New("zdb: Config needs DataDir, Log, Clock, Command and Listen")
	}
	if cfg.CheckEvery <= 0 {
		cfg.CheckEvery = 2 * time.Second
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 10 * time.Second
	}
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	root := filepath.Join(abs, "workload", fmt.Sprintf("v%d", LayoutVersion), "zdb")
	if err := os.MkdirAll(filepath.Join(root, "workloads"), 0o700); err != nil {
		return nil, fmt.Errorf("zdb: %w", err)
	}
	srv, err := newServer(root, cfg)
	if err != nil {
		return nil, err
	}
	m := &Manager{cfg: cfg, root: root, srv: srv, busy: map[workload.Ref]int{}, stop: make(chan struct{})}
	m.wg.Go(m.watch)
	return m, nil
}

func (m *Manager) dir(ref workload.Ref) string {
	return filepath.Join(m.root, "workloads", strconv.FormatUint(ref.Deployment, 10), ref.Name)
}
func (m *Manager) state(ref workload.Ref) string { return filepath.Join(m.dir(ref), "state.json") }

// Type implements workload.Manager.
func (m *Manager) Type() string { return spec.TypeZDB }

// List implements workload.Manager.
func (m *Manager) List(context.Context) ([]workload.Ref, error) {
	return workload.ListRecords(filepath.Join(m.root, "workloads"), m.state)
}

// Close implements workload.Manager: it stops watching the server and
// returns once the watcher has; the server keeps running.
func (m *Manager) Close() error {
	m.once.Do(func() { close(m.stop) })
	m.wg.Wait()
	m.srv.release()
	return nil
}

// watch starts the server again when it is gone while workloads need it.
func (m *Manager) watch() {
	for {
		select {
		case <-m.stop:
			return
		case <-m.cfg.Clock.After(m.cfg.CheckEvery):
		}
		m.life.RLock()
		refs, err := m.List(context.Background())
		if err != nil || len(refs) == 0 {
			m.life.RUnlock()
			continue
		}
		why, started, err := m.srv.ensure()
		m.life.RUnlock()
		switch {
		case err != nil:
			m.cfg.Log.Warn("zdb server", "err", err)
		case started:
			for _, ref := range refs {
				m.event(ref, eventlog.KindRestarted, why)
			}
		}
	}
}

// check validates a zdb workload and returns its config.
func check(w spec.Workload) (spec.ZDBConfig, error) {
	var cfg spec.ZDBConfig
	if err := workload.CheckName(w.Name); err != nil {
		return cfg, err
	}
	if w.Type != spec.TypeZDB {
		return cfg, workload.Permanent(workload.ErrWrongType, "workload %s is a %q, not a zdb", w.Name, w.Type)
	}
	if err := w.DecodeConfig(&cfg); err != nil {
		return cfg, workload.Permanent(workload.ErrInvalid, "%v", err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, workload.Permanent(workload.ErrInvalid, "zdb %s: %v", w.Name, err)
	}
	if w.Resources.Disk == 0 {
		return cfg, workload.Permanent(workload.ErrInvalid, "zdb %s: no size: give it one (size: 10GiB)", w.Name)
	}
	return cfg, nil
}

// Provision implements workload.Manager.
func (m *Manager) Provision(ctx context.Context, d workload.Deployment, w spec.Workload) error {
	return m.converge(ctx, d, w, false)
}

// Update implements workload.Manager: a new password or size applies at
// once; the mode of a namespace that holds data cannot change.
func (m *Manager) Update(ctx context.Context, d workload.Deployment, w spec.Workload) error {
	return m.converge(ctx, d, w, true)
}

func (m *Manager) converge(ctx context.Context, d workload.Deployment, w spec.Workload, mustExist bool) error {
	cfg, err := check(w)
	if err != nil {
		return err
	}
	password, ok := d.Secrets.Get(cfg.Password)
	if !ok || len(password) == 0 {
		return workload.Permanent(workload.ErrInvalid, "zdb %s: the contract carries no secret %s for its password: add it to the spec's secrets", w.Name, cfg.Password)
	}
	ref := workload.Ref{Deployment: d.ID, Name: w.Name}
	m.setBusy(ref, 1)
	defer m.setBusy(ref, -1)
	unlock := m.locks.Lock(ref)
	defer unlock()
	if err := ctx.Err(); err != nil {
		return err
	}
	m.life.RLock()
	defer m.life.RUnlock()
	_, ok, err = m.load(ref)
	switch {
	case err != nil:
		return err
	case !ok && mustExist:
		return fmt.Errorf("zdb %s: %w", w.Name, workload.ErrNotFound)
	}
	mode := cfg.Mode
	if mode == "" {
		mode = spec.ZDBModeUser
	}
	rec := record{Version: LayoutVersion, Deployment: d.ID, Name: w.Name, Namespace: NamespaceName(d.ID, w.Name), MaxSize: w.Resources.Disk, Mode: mode}
	if err := os.MkdirAll(m.dir(ref), 0o700); err != nil {
		return fmt.Errorf("zdb %s: %w", w.Name, err)
	}
	// The record comes first: the records list everything the manager
	// may have left on the machine.
	if err := statefile.Save(m.state(ref), &rec); err != nil {
		return fmt.Errorf("zdb %s: %w", w.Name, err)
	}
	why, started, err := m.srv.ensure()
	if err != nil {
		return workload.Retryable(err, "zdb %s: start the zdb server: %s (retrying)", w.Name, workload.Reason(err))
	}
	if started {
		m.event(ref, eventlog.KindProvisioning, why)
	}
	err = m.srv.admin(ctx, func(a *adminConn) error {
		return a.configure(ctx, rec.Namespace, string(password), rec.MaxSize, rec.Mode)
	})
	clear(password)
	if err != nil {
		if errors.Is(err, errModeChange) {
			return workload.Permanent(workload.ErrInvalid, "zdb %s: its namespace holds data, so its mode stays what it was: deploy a new zdb for mode %s", w.Name, mode)
		}
		return workload.Retryable(err, "zdb %s: set up namespace %s: %s (retrying)", w.Name, rec.Namespace, workload.Reason(err))
	}
	return nil
}

func (m *Manager) setBusy(ref workload.Ref, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.busy[ref] += n; m.busy[ref] <= 0 {
		delete(m.busy, ref)
	}
}

// Deprovision implements workload.Manager: it deletes the namespace and
// its data, and stops the server when no zdb workload is left.
func (m *Manager) Deprovision(ctx context.Context, d workload.Deployment, name string) error {
	if err := workload.CheckName(name); err != nil {
		return err
	}
	ref := workload.Ref{Deployment: d.ID, Name: name}
	unlock := m.locks.Lock(ref)
	defer unlock()
	rec, ok, err := m.load(ref)
	if err != nil {
		return err
	}
	if ok {
		if err := m.srv.deleteNamespace(ctx, rec.Namespace); err != nil {
			return workload.Retryable(err, "zdb %s: delete namespace %s: %s (retrying)", name, rec.Namespace, workload.Reason(err))
		}
	}
	if err := os.RemoveAll(m.dir(ref)); err != nil {
		return fmt.Errorf("zdb %s: %w", name, err)
	}
	os.Remove(filepath.Dir(m.dir(ref))) // the deployment's directory, when empty
	m.events.Drop(ref)
	m.life.Lock()
	defer m.life.Unlock()
	refs, err := m.List(ctx)
	if err == nil && len(refs) == 0 {
		return m.srv.shutdown()
	}
	return err
}

// Observe implements workload.Manager: Ready while the server runs and
// serves the namespace, Provisioning while it is (re)starting.
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
	busy := m.busy[ref] > 0
	m.mu.Unlock()
	st := workload.Status{State: workload.Provisioning, Restarts: m.srv.restarts()}
	switch {
	case busy:
		st.Reason = "being provisioned"
	case !ok:
		return workload.Status{}, fmt.Errorf("zdb %s: %w", name, workload.ErrNotFound)
	default:
		info, err := m.srv.namespaceInfo(ctx, rec.Namespace)
		switch {
		case errors.Is(err, errNoNamespace):
			st.State, st.Reason = workload.Pending, "namespace not created yet (Provision creates it)"
		case err != nil:
			st.Reason = "zdb server not answering: " + workload.Reason(err)
		default:
			st.State, st.Addr = workload.Ready, m.cfg.Listen.String()
			if info.maxSize > 0 && info.diskSize >= info.maxSize {
				st.State, st.Reason = workload.Degraded, fmt.Sprintf("full: %d bytes on disk, limit %d (writes are refused; delete keys and compact)", info.diskSize, info.maxSize)
			}
		}
	}
	if len(st.Reason) > workload.MaxReason {
		st.Reason = st.Reason[:workload.MaxReason]
	}
	st.Events = m.events.For(ref).Drain()
	return st, nil
}

// load reads ref's record.
func (m *Manager) load(ref workload.Ref) (record, bool, error) {
	var rec record
	ok, err := statefile.LoadVersion(m.state(ref), &rec, LayoutVersion)
	if err != nil {
		return rec, false, fmt.Errorf("zdb %s: %w", ref.Name, err)
	}
	return rec, ok, nil
}

func (m *Manager) event(ref workload.Ref, kind, reason string) {
	m.events.For(ref).Add(m.cfg.Clock.Now(), kind, reason)
	m.cfg.Log.Info("zdb "+kind, "deployment", ref.Deployment, "name", ref.Name, "reason", reason)
}
