package qsfs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"sync"
	"time"

	"github.com/zerogrid/zerogrid/internal/eventlog"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
	"github.com/zerogrid/zerogrid/internal/workload/proc"
	"github.com/zerogrid/zerogrid/internal/workload/statefile"
)

// LayoutVersion is the version of the manager's records (part of the path).
const LayoutVersion = 1

// Config configures a Manager.
type Config struct {
	DataDir string
	Log     *slog.Logger
	Clock   workload.Clock
	// Command is the argv that starts a mount process, `zgridd
	// qsfs-mount`; the manager adds --config, --mountpoint, --cache-dir
	// and --health, and passes the mnemonic in ZGRID_MNEMONIC.
	Command []string
	// Resolve finds a backend on the ledger.
	Resolve Resolver
	// CheckEvery is how often mount processes are checked and started
	// again when gone (2 s).
	CheckEvery time.Duration
	// MountWait bounds how long Provision waits for the mount (60 s).
	MountWait time.Duration
	// StopTimeout is how long a mount process has after SIGTERM (20 s).
	StopTimeout time.Duration
}

// Manager runs qsfs workloads (doc.go). It is safe for concurrent use.
type Manager struct {
	cfg    Config
	root   string
	locks  workload.Locks
	events workload.EventQueues
	recMu  sync.Mutex

	mu      sync.Mutex
	running map[workload.Ref]*mount
	busy    map[workload.Ref]int
	closed  bool

	stop chan struct{}
	wg   sync.WaitGroup
	once sync.Once
}

// mount is a workload's mount process and what starts it again.
type mount struct {
	p    *proc.Proc
	hash string
	env  []string // holds the mnemonic: in memory only
}

// record is a workload's state.json.
type record struct {
	Version    int      `json:"version"`
	Deployment uint64   `json:"deployment"`
	Name       string   `json:"name"`
	Hash       string   `json:"hash,omitempty"` // of the store config and mnemonic the process runs with
	Proc       *proc.ID `json:"proc,omitempty"`
	Restarts   int      `json:"restarts"`
}

// LayoutVersion implements statefile.Versioned.
func (r *record) LayoutVersion() int { return r.Version }

var (
	_ workload.Manager = (*Manager)(nil)
	_ workload.Mounter = (*Manager)(nil)
)

// New returns a manager keeping its records below cfg.DataDir, with a
// goroutine that starts mount processes again when they end; Close stops
// it (the processes keep running).
func New(cfg Config) (*Manager, error) {
	if cfg.DataDir == "" || cfg.Log == nil || cfg.Clock == nil || len(cfg.Command) == 0 || cfg.Resolve == nil {
		return nil, errors.New("qsfs: Config needs DataDir, Log, Clock, Command and Resolve")
	}
	if cfg.CheckEvery <= 0 {
		cfg.CheckEvery = 2 * time.Second
	}
	if cfg.MountWait <= 0 {
		cfg.MountWait = time.Minute
	}
	if cfg.StopTimeout <= 0 {
		cfg.StopTimeout = 20 * time.Second
	}
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return nil, err
	}
	root := filepath.Join(abs, "workload", fmt.Sprintf("v%d", LayoutVersion), "qsfs")
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("qsfs: %w", err)
	}
	m := &Manager{cfg: cfg, root: root, running: map[workload.Ref]*mount{}, busy: map[workload.Ref]int{}, stop: make(chan struct{})}
	m.wg.Go(m.watch)
	return m, nil
}

func (m *Manager) dir(ref workload.Ref) string {
	return filepath.Join(m.root, strconv.FormatUint(ref.Deployment, 10), ref.Name)
}
func (m *Manager) state(ref workload.Ref) string  { return filepath.Join(m.dir(ref), "state.json") }
func (m *Manager) mnt(ref workload.Ref) string    { return filepath.Join(m.dir(ref), "mnt") }
func (m *Manager) health(ref workload.Ref) string { return filepath.Join(m.dir(ref), "health.json") }

// Type implements workload.Manager.
func (m *Manager) Type() string { return spec.TypeQSFS }

// List implements workload.Manager.
func (m *Manager) List(context.Context) ([]workload.Ref, error) {
	return workload.ListRecords(m.root, m.state)
}

// Close implements workload.Manager: mount processes keep running.
func (m *Manager) Close() error {
	m.once.Do(func() { close(m.stop) })
	m.wg.Wait()
	m.mu.Lock()
	defer m.mu.Unlock()
	m.closed = true
	for ref, mt := range m.running {
		mt.p.Close()
		delete(m.running, ref)
	}
	return nil
}

// check validates a qsfs workload and returns its config.
func check(w spec.Workload) (spec.QSFSConfig, error) {
	var cfg spec.QSFSConfig
	if err := workload.CheckName(w.Name); err != nil {
		return cfg, err
	}
	if w.Type != spec.TypeQSFS {
		return cfg, workload.Permanent(workload.ErrWrongType, "workload %s is a %q, not a qsfs", w.Name, w.Type)
	}
	if err := w.DecodeConfig(&cfg); err != nil {
		return cfg, workload.Permanent(workload.ErrInvalid, "%v", err)
	}
	if err := cfg.Validate(); err != nil {
		return cfg, workload.Permanent(workload.ErrInvalid, "qsfs %s: %v", w.Name, err)
	}
	return cfg, nil
}

// Provision implements workload.Manager: it returns once the file system
// is mounted (healthy or degraded).
func (m *Manager) Provision(ctx context.Context, d workload.Deployment, w spec.Workload) error {
	return m.converge(ctx, d, w, false)
}

// Update implements workload.Manager: a changed backend list or secret
// restarts the mount process (containers keep the mount they bound).
func (m *Manager) Update(ctx context.Context, d workload.Deployment, w spec.Workload) error {
	return m.converge(ctx, d, w, true)
}

func (m *Manager) converge(ctx context.Context, d workload.Deployment, w spec.Workload, mustExist bool) error {
	cfg, err := check(w)
	if err != nil {
		return err
	}
	mnemonic, ok1 := d.Secrets.Get(cfg.Secret)
	password, ok2 := d.Secrets.Get(cfg.Password)
	defer clear(mnemonic)
	defer clear(password)
	if !ok1 || !ok2 {
		return workload.Permanent(workload.ErrInvalid, "qsfs %s: the contract lacks secret %s or %s: add them to the spec's secrets", w.Name, cfg.Secret, cfg.Password)
	}
	ref := workload.Ref{Deployment: d.ID, Name: w.Name}
	m.setBusy(ref, 1)
	defer m.setBusy(ref, -1)
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
		return fmt.Errorf("qsfs %s: %w", w.Name, workload.ErrNotFound)
	}
	var bs []Backend
	for _, r := range cfg.Backends {
		b, err := m.cfg.Resolve(ctx, d.Owner, r)
		if err != nil {
			return err
		}
		bs = append(bs, b)
	}
	conf, err := StoreConfig(cfg.K, cfg.M, bs, string(password))
	if err != nil {
		return workload.Permanent(workload.ErrInvalid, "qsfs %s: %v", w.Name, err)
	}
	sum := sha256.Sum256(append(append(conf, 0), mnemonic...))
	hash := hex.EncodeToString(sum[:])
	for _, sub := range []string{"mnt", "cache"} {
		if err := os.MkdirAll(filepath.Join(m.dir(ref), sub), 0o700); err != nil {
			return fmt.Errorf("qsfs %s: %w", w.Name, err)
		}
	}
	err = m.update(ref, func(r *record) { r.Version, r.Deployment, r.Name = LayoutVersion, d.ID, w.Name })
	if err != nil {
		return err
	}
	if err := statefile.WriteFile(filepath.Join(m.dir(ref), "store.yaml"), conf, 0o600); err != nil {
		return fmt.Errorf("qsfs %s: %w", w.Name, err)
	}
	env := []string{"ZGRID_MNEMONIC=" + string(mnemonic)}
	if err := m.ensure(ref, rec, hash, env); err != nil {
		return err
	}
	return m.waitMounted(ctx, ref)
}

// ensure makes a mount process with config hash run for ref: the one
// running, one a previous agent left (adopted), or a new one.
func (m *Manager) ensure(ref workload.Ref, rec record, hash string, env []string) error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return workload.ErrClosed
	}
	mt := m.running[ref]
	m.mu.Unlock()
	if mt == nil && rec.Proc != nil {
		p, err := proc.Adopt(*rec.Proc)
		if err != nil {
			return fmt.Errorf("qsfs %s: find its mount process: %w", ref.Name, err)
		}
		if p != nil {
			mt = &mount{p: p, hash: rec.Hash}
		}
	}
	if mt != nil && mt.hash == hash && mt.p.Alive() {
		mt.env = env
		m.setRunning(ref, mt)
		return nil
	}
	if mt != nil {
		if err := m.stopMount(ref, mt); err != nil {
			return err
		}
		m.event(ref, eventlog.KindProvisioning, "configuration changed: mount process restarted")
	}
	_, err := m.start(ref, hash, env)
	return err
}

// start starts ref's mount process.
func (m *Manager) start(ref workload.Ref, hash string, env []string) (*mount, error) {
	// A mount left by a process that died is detached first.
	detach(m.mnt(ref))
	os.Remove(m.health(ref))
	log, err := os.OpenFile(filepath.Join(m.dir(ref), "log"), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, err
	}
	defer log.Close()
	argv := append(append([]string(nil), m.cfg.Command...), "--config", filepath.Join(m.dir(ref), "store.yaml"),
		"--mountpoint", m.mnt(ref), "--cache-dir", filepath.Join(m.dir(ref), "cache"), "--health", m.health(ref))
	p, err := proc.Spawn(argv, env, log)
	if err != nil {
		return nil, fmt.Errorf("qsfs %s: start the mount process: %w", ref.Name, err)
	}
	id := p.ID()
	if err := m.update(ref, func(r *record) { r.Proc, r.Hash = &id, hash }); err != nil {
		p.Kill(m.cfg.StopTimeout)
		return nil, err
	}
	mt := &mount{p: p, hash: hash, env: env}
	m.setRunning(ref, mt)
	m.event(ref, eventlog.KindProvisioning, fmt.Sprintf("mount process started (pid %d)", p.PID))
	return mt, nil
}

// stopMount ends a mount process; it unmounts on SIGTERM, and what it
// leaves mounted is detached.
func (m *Manager) stopMount(ref workload.Ref, mt *mount) error {
	m.mu.Lock()
	delete(m.running, ref)
	m.mu.Unlock()
	if err := mt.p.Kill(m.cfg.StopTimeout); err != nil {
		return fmt.Errorf("qsfs %s: %w", ref.Name, err)
	}
	detach(m.mnt(ref))
	return nil
}

func (m *Manager) setRunning(ref workload.Ref, mt *mount) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.running[ref] = mt
}

// waitMounted waits until the mount process reports the file system
// mounted, or failed.
func (m *Manager) waitMounted(ctx context.Context, ref workload.Ref) error {
	deadline := m.cfg.Clock.Now().Add(m.cfg.MountWait)
	for {
		h, ok, _ := readHealth(m.health(ref))
		switch {
		case ok && (h.State == StateHealthy || h.State == StateDegraded):
			return nil
		case ok && h.State == StateFailed:
			return workload.Retryable(errors.New(h.Reason), "qsfs %s: %s (retrying)", ref.Name, h.Reason)
		case m.cfg.Clock.Now().After(deadline):
			return workload.Retryable(workload.ErrDependency, "qsfs %s: not mounted after %s: %s (retrying)", ref.Name, m.cfg.MountWait, h.Reason)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-m.cfg.Clock.After(100 * time.Millisecond):
		}
	}
}

// watch starts mount processes again when they end.
func (m *Manager) watch() {
	for {
		select {
		case <-m.stop:
			return
		case <-m.cfg.Clock.After(m.cfg.CheckEvery):
		}
		m.mu.Lock()
		var dead []workload.Ref
		for ref, mt := range m.running {
			if !mt.p.Alive() {
				dead = append(dead, ref)
			}
		}
		m.mu.Unlock()
		for _, ref := range dead {
			m.restart(ref)
		}
	}
}

func (m *Manager) restart(ref workload.Ref) {
	unlock := m.locks.Lock(ref)
	defer unlock()
	m.mu.Lock()
	mt := m.running[ref]
	m.mu.Unlock()
	if mt == nil || mt.p.Alive() {
		return
	}
	why := fmt.Sprintf("the mount process (pid %d) ended%s", mt.p.PID, mt.p.Reap())
	_, err := m.start(ref, mt.hash, mt.env)
	if uerr := m.update(ref, func(r *record) { r.Restarts++ }); uerr != nil {
		m.cfg.Log.Warn("save restart count", "name", ref.Name, "err", uerr)
	}
	if err != nil {
		m.mu.Lock()
		delete(m.running, ref)
		m.mu.Unlock()
		m.event(ref, eventlog.KindDegraded, why+"; restart failed: "+workload.Reason(err))
		return
	}
	m.event(ref, eventlog.KindRestarted, why+"; restarted")
}

func (m *Manager) setBusy(ref workload.Ref, n int) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.busy[ref] += n; m.busy[ref] <= 0 {
		delete(m.busy, ref)
	}
}

// Deprovision implements workload.Manager: it stops the mount process
// and removes the workload's files. The store's data stays on its
// backends (they belong to other contracts).
func (m *Manager) Deprovision(ctx context.Context, d workload.Deployment, name string) error {
	if err := workload.CheckName(name); err != nil {
		return err
	}
	ref := workload.Ref{Deployment: d.ID, Name: name}
	unlock := m.locks.Lock(ref)
	defer unlock()
	m.mu.Lock()
	mt := m.running[ref]
	m.mu.Unlock()
	if mt == nil {
		rec, ok, err := m.load(ref)
		if err != nil {
			return err
		}
		if ok && rec.Proc != nil {
			p, err := proc.Adopt(*rec.Proc)
			if err != nil {
				return fmt.Errorf("qsfs %s: find its mount process: %w", name, err)
			}
			if p != nil {
				mt = &mount{p: p}
			}
		}
	}
	if mt != nil {
		if err := m.stopMount(ref, mt); err != nil {
			return err
		}
	}
	detach(m.mnt(ref))
	if err := os.RemoveAll(m.dir(ref)); err != nil {
		return fmt.Errorf("qsfs %s: %w", name, err)
	}
	os.Remove(filepath.Dir(m.dir(ref)))
	m.events.Drop(ref)
	return nil
}

// HostPath implements workload.Mounter: the mount point, once mounted.
func (m *Manager) HostPath(ctx context.Context, d workload.Deployment, name string) (string, error) {
	ref := workload.Ref{Deployment: d.ID, Name: name}
	h, ok, err := readHealth(m.health(ref))
	if err != nil || !ok || (h.State != StateHealthy && h.State != StateDegraded) {
		return "", fmt.Errorf("qsfs %s: not mounted: %w", name, workload.ErrNotFound)
	}
	return m.mnt(ref), nil
}

// Observe implements workload.Manager: Ready while healthy, Degraded with
// the missing backends, Provisioning while (re)starting.
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
	mt, busy := m.running[ref], m.busy[ref] > 0
	m.mu.Unlock()
	st := workload.Status{State: workload.Provisioning, Restarts: rec.Restarts}
	switch {
	case busy && mt == nil:
		st.Reason = "being provisioned"
	case !ok:
		return workload.Status{}, fmt.Errorf("qsfs %s: %w", name, workload.ErrNotFound)
	case mt == nil:
		st.State, st.Reason = workload.Pending, "mount process not adopted by this agent yet (Provision adopts it)"
	case !mt.p.Alive():
		st.Reason = "the mount process ended; restarting it"
	default:
		h, ok, _ := readHealth(m.health(ref))
		switch {
		case !ok || h.State == StateStarting:
			st.Reason = "mounting: " + h.Reason
		case h.State == StateHealthy:
			st.State = workload.Ready
		case h.State == StateDegraded:
			st.State, st.Reason = workload.Degraded, h.Reason
		default:
			st.State, st.Reason = workload.Degraded, h.Reason
		}
	}
	if len(st.Reason) > workload.MaxReason {
		st.Reason = st.Reason[:workload.MaxReason]
	}
	st.Events = m.events.For(ref).Drain()
	return st, nil
}

func (m *Manager) load(ref workload.Ref) (record, bool, error) {
	var rec record
	ok, err := statefile.LoadVersion(m.state(ref), &rec, LayoutVersion)
	if err != nil {
		return rec, false, fmt.Errorf("qsfs %s: %w", ref.Name, err)
	}
	return rec, ok, nil
}

func (m *Manager) update(ref workload.Ref, f func(*record)) error {
	m.recMu.Lock()
	defer m.recMu.Unlock()
	rec, _, err := m.load(ref)
	if err != nil {
		return err
	}
	f(&rec)
	if err := statefile.Save(m.state(ref), &rec); err != nil {
		return fmt.Errorf("qsfs %s: %w", ref.Name, err)
	}
	return nil
}

func (m *Manager) event(ref workload.Ref, kind, reason string) {
	m.events.For(ref).Add(m.cfg.Clock.Now(), kind, reason)
	m.cfg.Log.Info("qsfs "+kind, "deployment", ref.Deployment, "name", ref.Name, "reason", reason)
}
