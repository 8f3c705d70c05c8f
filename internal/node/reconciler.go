package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
	"github.com/zerogrid/zerogrid/internal/workload"
)

// Config wires a Reconciler.
type Config struct {
	Client *client.Client
	Key    identity.PrivateKey // the node's key
	// Signer sends the node's transactions; share it with the heartbeat so
	// that one key's sequence numbers come from one place. Nil makes one.
	Signer   *client.Signer
	NodeID   uint64
	Managers map[string]workload.Manager // by spec workload type
	DataDir  string                      // journals live in DataDir/events
	// Workers bounds how many deployments provision at once (default 4);
	// observing and reporting never wait for it.
	Workers int
	// Resync is how often every contract is re-read from the ledger even
	// without events (default 10 s): the reconciler is level-triggered.
	Resync time.Duration
	// CannotRun says why this node has no manager for a workload type
	// whose prerequisites are missing (what the heartbeat reports, e.g.
	// "runc is not installed (Debian package runc)"). A contract naming a
	// type without a manager is refused with that reason, never accepted.
	CannotRun map[string]string
	// Gate, when set, is asked before this node accepts a generation it
	// has not accepted yet: while it returns an error (e.g. the release
	// this node runs is below the minimum a newer release requires), no new
	// contract is accepted; accepted ones keep running. It is retried, not
	// a refusal of the contract.
	Gate func() error
	// Tick is how often each deployment observes its workloads and reports
	// changes (default 1 s).
	Tick   time.Duration
	Logger *slog.Logger
	Now    func() time.Time
}

func (c *Config) defaults() {
	if c.Workers <= 0 {
		c.Workers = 4
	}
	if c.Resync <= 0 {
		c.Resync = 10 * time.Second
	}
	if c.Tick <= 0 {
		c.Tick = time.Second
	}
	if c.Logger == nil {
		c.Logger = slog.New(slog.DiscardHandler)
	}
	if c.Now == nil {
		c.Now = time.Now
	}
}

// Reconciler turns the contracts addressed to this node into running
// workloads: one goroutine per deployment, a bounded pool for the heavy
// work, desired state from the ledger, observed state from the managers.
type Reconciler struct {
	cfg  Config
	seal identity.SealPrivateKey
	sem  chan struct{}
	log  *slog.Logger

	mu      sync.Mutex
	workers map[uint64]*deployment
	wg      sync.WaitGroup
}

// NewReconciler checks cfg and derives the node's sealing key.
func NewReconciler(cfg Config) (*Reconciler, error) {
	cfg.defaults()
	if cfg.Client == nil || cfg.Key.IsZero() || cfg.NodeID == 0 || len(cfg.Managers) == 0 {
		return nil, errors.New("node: reconciler needs a client, the node key, its id and workload managers")
	}
	if cfg.Signer == nil {
		cfg.Signer = cfg.Client.Signer(cfg.Key)
	}
	seal, err := cfg.Key.SealKey()
	if err != nil {
		return nil, err
	}
	return &Reconciler{cfg: cfg, seal: seal, sem: make(chan struct{}, cfg.Workers),
		log: cfg.Logger, workers: map[uint64]*deployment{}}, nil
}

// Run reconciles until ctx ends, then waits for the deployment goroutines.
// Workloads keep running after Run returns; the next Run adopts them.
func (r *Reconciler) Run(ctx context.Context) error {
	defer r.wg.Wait()
	from, err := r.cfg.Client.LatestHeight(ctx)
	if err != nil {
		return fmt.Errorf("read ledger height: %w", err)
	}
	events := r.cfg.Client.WatchContracts(ctx, from, client.ContractFilter{Node: r.cfg.NodeID})
	r.resync(ctx)
	t := time.NewTicker(r.cfg.Resync)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case ev, ok := <-events:
			if !ok {
				return nil
			}
			r.refresh(ctx, ev.Contract)
		case <-t.C:
			r.resync(ctx)
		}
	}
}

// resync reads every contract for this node and hands each to its worker;
// then removes workloads that no live contract wants.
func (r *Reconciler) resync(ctx context.Context) {
	cs, err := r.cfg.Client.ContractsByNode(ctx, r.cfg.NodeID)
	if err != nil {
		r.log.Warn("list contracts", "err", err)
		return
	}
	live := map[uint64]bool{}
	for i := range cs {
		live[cs[i].ID] = cs[i].Live()
		r.dispatch(ctx, &cs[i])
	}
	r.removeOrphans(ctx, live)
}

func (r *Reconciler) refresh(ctx context.Context, id uint64) {
	c, err := r.cfg.Client.Contract(ctx, id)
	if err != nil {
		r.log.Warn("read contract", "contract", id, "err", err)
		return
	}
	r.dispatch(ctx, c)
}

// dispatch gives the contract to its deployment goroutine, starting one
// for a live contract that has none.
func (r *Reconciler) dispatch(ctx context.Context, c *ledger.Contract) {
	r.mu.Lock()
	defer r.mu.Unlock()
	d, ok := r.workers[c.ID]
	if !ok {
		if !c.Live() && !r.hasLocal(ctx, c.ID) {
			return
		}
		d = newDeployment(r, c.ID)
		r.workers[c.ID] = d
		r.wg.Add(1)
		go func() {
			defer r.wg.Done()
			d.run(ctx)
			r.mu.Lock()
			delete(r.workers, c.ID)
			r.mu.Unlock()
		}()
	}
	d.update(c)
}

// hasLocal reports whether any manager runs a workload of contract id.
func (r *Reconciler) hasLocal(ctx context.Context, id uint64) bool {
	for _, m := range r.cfg.Managers {
		refs, err := m.List(ctx)
		if err != nil {
			return true // assume so; the worker will find out
		}
		for _, ref := range refs {
			if ref.Deployment == id {
				return true
			}
		}
	}
	return false
}

// removeOrphans deprovisions local workloads of contracts the ledger does
// not list as live for this node (e.g. left by a crash during a cancel).
func (r *Reconciler) removeOrphans(ctx context.Context, live map[uint64]bool) {
	types := make([]string, 0, len(r.cfg.Managers))
	for t := range r.cfg.Managers {
		types = append(types, t)
	}
	// Dependents (containers) first, then what they use (volumes).
	sort.Slice(types, func(i, j int) bool { return typeOrder[types[i]] > typeOrder[types[j]] })
	for _, t := range types {
		m := r.cfg.Managers[t]
		refs, err := m.List(ctx)
		if err != nil {
			continue
		}
		for _, ref := range refs {
			if live[ref.Deployment] {
				continue
			}
			r.mu.Lock()
			_, busy := r.workers[ref.Deployment]
			r.mu.Unlock()
			if busy {
				continue
			}
			if err := m.Deprovision(ctx, workload.Deployment{ID: ref.Deployment}, ref.Name); err != nil {
				r.log.Warn("remove orphaned workload", "contract", ref.Deployment, "workload", ref.Name, "err", err)
			}
		}
	}
}

func (r *Reconciler) journalDir() string { return filepath.Join(r.cfg.DataDir, "events") }
