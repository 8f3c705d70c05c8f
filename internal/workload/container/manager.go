package container

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/netip"
	"os"
	"path/filepath"
	"sync"
	"time"

	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
	"github.com/zerogrid/zerogrid/internal/workload/idmap"
	privnet "github.com/zerogrid/zerogrid/internal/workload/network"
)

// Config configures a Manager. Zero fields take the defaults named.
type Config struct {
	// DataDir is the node's data directory; containers, their root
	// filesystems and the image cache live below DataDir/workload/v1.
	DataDir string
	// RunDir holds runc's state and the bundles, which contain opened
	// secrets: it should be a tmpfs. Default /run/zerogrid/<instance>.
	RunDir string
	// Subnet is the IPv4 range container links are cut from, /30 each.
	// Nodes sharing a network namespace need distinct subnets. Default
	// 10.250.0.0/16.
	Subnet netip.Prefix
	// CgroupParent is the cgroup under which each node keeps its
	// containers, in <CgroupParent>/<instance>/. Default /zerogrid.
	CgroupParent string
	// InsecureRegistries are host:port registries reachable over plain
	// HTTP besides loopback ones. Images stay verified by digest.
	InsecureRegistries []string
	// MountDir is where each container's root filesystem is bind-mounted
	// for runc, in <MountDir>/<instance>/: a directory every container's
	// user namespace can traverse (0711 down from it, and every parent
	// searchable by others), which DataDir need not be. Default
	// /run/zerogrid-rootfs.
	MountDir string
	// IDs allocates each deployment's range of host ids; containers and
	// volumes of one node share one. Default: an allocator over DataDir
	// with idmap.DefaultPool.
	IDs *idmap.Allocator
	// Runc and IP are the binaries used; default "runc" and "ip" from PATH.
	Runc, IP string
	// MaxImageBytes bounds an image's compressed layers (default 2 GiB),
	// MaxRootfsBytes their unpacked content (default 4 GiB).
	MaxImageBytes, MaxRootfsBytes int64
	// StopTimeout is how long a container has to exit after SIGTERM
	// before SIGKILL. Default 5s.
	StopTimeout time.Duration
	// Transport is the base HTTP transport to registries; default a clone
	// of http.DefaultTransport.
	Transport http.RoundTripper
	Log       *slog.Logger
	Clock     workload.Clock
}

// Manager runs container workloads. It is safe for concurrent use.
// Creating one makes the process a child subreaper (see doc.go).
type Manager struct {
	cfg    Config
	log    *slog.Logger
	clock  workload.Clock
	layout layout
	pull   *puller
	net    network
	runc   runc
	ids    *idmap.Allocator
	noFile uint64
	locks  workload.Locks

	recMu   sync.Mutex // serializes record read-modify-writes
	mountMu sync.Mutex // see rootfsMount

	mu     sync.Mutex
	closed bool
	sups   map[workload.Ref]*supervisor
	// privTools are ip and nft for private networks, found on first use.
	privTools privnet.Tools
	busy      map[workload.Ref]int
	slots     map[int]workload.Ref
	events    workload.EventQueues
}

var _ workload.Manager = (*Manager)(nil)

// New returns a manager over the containers below cfg.DataDir. It does
// not touch them: Provision adopts each when the reconciler asks for it.
// On a machine that cannot run containers (see Available) it returns a
// *workload.UnavailableError saying what is missing.
func New(cfg Config) (*Manager, error) {
	cfg, inst, err := withDefaults(cfg)
	if err != nil {
		return nil, err
	}
	if err := Available(cfg.Runc, cfg.IP); err != nil {
		return nil, &workload.UnavailableError{Type: spec.TypeContainer, Reason: err.Error()}
	}
	if err := becomeSubreaper(); err != nil {
		return nil, &workload.UnavailableError{Type: spec.TypeContainer, Reason: "cannot become a child subreaper: " + err.Error()}
	}
	m := &Manager{
		cfg: cfg, log: cfg.Log, clock: cfg.Clock,
		layout: layout{data: filepath.Join(cfg.DataDir, "workload", fmt.Sprintf("v%d", LayoutVersion)),
			run: cfg.RunDir, mounts: filepath.Join(cfg.MountDir, inst), instance: inst, cgroup: cfg.CgroupParent},
		net:  network{subnet: cfg.Subnet, instance: inst, ip: cfg.IP, runDir: cfg.RunDir},
		runc: runc{bin: cfg.Runc, root: filepath.Join(cfg.RunDir, "runc")},
		ids:  cfg.IDs,
		sups: map[workload.Ref]*supervisor{}, busy: map[workload.Ref]int{},
		slots:  map[int]workload.Ref{},
		noFile: noFileLimit(),
	}
	if err := searchable(cfg.MountDir, cfg.MountDir); err != nil {
		return nil, &workload.UnavailableError{Type: spec.TypeContainer, Reason: err.Error()}
	}
	if m.ids == nil {
		if m.ids, err = idmap.Open(cfg.DataDir, idmap.DefaultPool); err != nil {
			return nil, fmt.Errorf("container: %w", err)
		}
	}
	insecure := map[string]bool{}
	for _, r := range cfg.InsecureRegistries {
		insecure[r] = true
	}
	m.pull = &puller{blobs: blobStore{dir: m.layout.blobs()}, insecure: insecure, maxImage: cfg.MaxImageBytes, log: cfg.Log,
		base: guard{inner: cfg.Transport, insecure: insecure}}
	for _, dir := range []string{m.layout.data, cfg.RunDir} {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return nil, fmt.Errorf("container: %w", err)
		}
	}
	if err := m.loadSlots(); err != nil {
		return nil, err
	}
	// A crash between recording a holder and writing the record leaves a
	// holder without a container.
	err = m.ids.Prune(spec.TypeContainer, func(dep uint64, name string) bool {
		_, err := os.Stat(m.layout.state(workload.Ref{Deployment: dep, Name: name}))
		return err == nil
	})
	if err != nil {
		return nil, fmt.Errorf("container: %w", err)
	}
	return m, nil
}

func withDefaults(cfg Config) (Config, string, error) {
	if cfg.DataDir == "" || cfg.Log == nil || cfg.Clock == nil {
		return cfg, "", errors.New("container: Config needs DataDir, Log and Clock")
	}
	abs, err := filepath.Abs(cfg.DataDir)
	if err != nil {
		return cfg, "", err
	}
	cfg.DataDir = abs
	sum := sha256.Sum256([]byte(abs))
	inst := hex.EncodeToString(sum[:3])
	cfg.RunDir = or(cfg.RunDir, "/run/zerogrid/"+inst)
	cfg.MountDir = or(cfg.MountDir, "/run/zerogrid-rootfs")
	if !filepath.IsAbs(cfg.MountDir) {
		return cfg, "", fmt.Errorf("container: mount directory %q is not an absolute path", cfg.MountDir)
	}
	cfg.CgroupParent = or(cfg.CgroupParent, "/zerogrid")
	cfg.Runc, cfg.IP = or(cfg.Runc, "runc"), or(cfg.IP, "ip")
	if !cfg.Subnet.IsValid() {
		cfg.Subnet = netip.MustParsePrefix("10.250.0.0/16")
	}
	if !cfg.Subnet.Addr().Is4() || cfg.Subnet.Bits() > 30 {
		return cfg, "", fmt.Errorf("container: subnet %s: want an IPv4 prefix of at most /30", cfg.Subnet)
	}
	cfg.Subnet = cfg.Subnet.Masked()
	cfg.MaxImageBytes = or(cfg.MaxImageBytes, 2<<30)
	cfg.MaxRootfsBytes = or(cfg.MaxRootfsBytes, 4<<30)
	cfg.StopTimeout = or(cfg.StopTimeout, 5*time.Second)
	if cfg.Transport == nil {
		cfg.Transport = http.DefaultTransport.(*http.Transport).Clone()
	}
	return cfg, inst, nil
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// loadSlots marks the address slots of existing containers as taken.
func (m *Manager) loadSlots() error {
	refs, err := m.layout.list()
	if err != nil {
		return fmt.Errorf("container: %w", err)
	}
	for _, ref := range refs {
		rec, ok, err := m.layout.load(ref)
		if err != nil || !ok {
			m.log.Warn("unreadable container record", "deployment", ref.Deployment, "name", ref.Name, "err", err)
			continue
		}
		m.slots[rec.Slot] = ref
	}
	return nil
}

// Type implements workload.Manager.
func (m *Manager) Type() string { return spec.TypeContainer }

// List implements workload.Manager.
func (m *Manager) List(ctx context.Context) ([]workload.Ref, error) { return m.layout.list() }

// Close implements workload.Manager: supervisors stop, containers run on.
func (m *Manager) Close() error {
	m.mu.Lock()
	m.closed = true
	sups := m.sups
	m.sups = map[workload.Ref]*supervisor{}
	m.mu.Unlock()
	for _, s := range sups {
		s.stop()
	}
	return nil
}

// allocSlot takes the lowest free address slot for ref.
func (m *Manager) allocSlot(ref workload.Ref) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := range m.net.slots() {
		if _, taken := m.slots[i]; !taken {
			m.slots[i] = ref
			return i, nil
		}
	}
	return 0, workload.Retryable(ErrNoAddress, "all %d container addresses of %s are taken", m.net.slots(), m.cfg.Subnet)
}

func (m *Manager) freeSlot(slot int, ref workload.Ref) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.slots[slot] == ref {
		delete(m.slots, slot)
	}
}

// enter marks ref busy until the returned function runs, and fails once
// the manager is closed.
func (m *Manager) enter(ref workload.Ref) (leave func(), err error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return nil, workload.ErrClosed
	}
	m.busy[ref]++
	return func() {
		m.mu.Lock()
		if m.busy[ref]--; m.busy[ref] == 0 {
			delete(m.busy, ref)
		}
		m.mu.Unlock()
	}, nil
}

func (m *Manager) queue(ref workload.Ref) *workload.EventQueue { return m.events.For(ref) }

func (m *Manager) rootfsMount(ref workload.Ref) rootfsMount {
	return rootfsMount{src: m.layout.rootfs(ref), mnt: m.layout.mountPoint(ref), mu: &m.mountMu}
}

func (m *Manager) event(ref workload.Ref, kind, reason string) {
	m.queue(ref).Add(m.clock.Now(), kind, reason)
	m.log.Info("container "+kind, "deployment", ref.Deployment, "name", ref.Name, "reason", reason)
}
