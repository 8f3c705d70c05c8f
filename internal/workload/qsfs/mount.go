package qsfs

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/zerogrid/zerogrid/internal/storage"
	"github.com/zerogrid/zerogrid/internal/storage/catalog"
	"github.com/zerogrid/zerogrid/internal/storage/fusefs"
)

// MountConfig configures RunMount, the body of `zgridd qsfs-mount`.
type MountConfig struct {
	ConfigFile string // the store configuration (StoreConfig)
	Mountpoint string
	CacheDir   string // spool of files being written
	HealthFile string
	Mnemonic   string
	Log        *slog.Logger
	// CheckEvery is how often the backends holding shards are probed (5 s).
	CheckEvery time.Duration
	// RepairAfter is how long backends may stay unreachable before the
	// shards they hold are rebuilt onto the others (1 min).
	RepairAfter time.Duration
	// ScrubEvery is how often every shard is read and checked, and what
	// is missing or corrupt repaired (6 h).
	ScrubEvery time.Duration
}

// probeName is what the probe asks backends for: any answer but
// ErrUnavailable, "not found" included, says the backend is up.
const probeName = "qsfs-probe"

// RunMount opens the store of mc.ConfigFile (initialising it when no
// backend holds one), mounts it at mc.Mountpoint with allow_other, keeps
// mc.HealthFile current and repairs in the background, until ctx ends;
// then it unmounts.
func RunMount(ctx context.Context, mc MountConfig) error {
	if mc.CheckEvery <= 0 {
		mc.CheckEvery = 5 * time.Second
	}
	if mc.RepairAfter <= 0 {
		mc.RepairAfter = time.Minute
	}
	if mc.ScrubEvery <= 0 {
		mc.ScrubEvery = 6 * time.Hour
	}
	report := func(h Health) {
		h.Time = time.Now().UTC()
		if err := writeHealth(mc.HealthFile, h); err != nil {
			mc.Log.Error("write health", "err", err)
		}
	}
	report(Health{State: StateStarting, Reason: "opening the store"})
	s, bs, err := openStore(ctx, mc)
	if err != nil {
		report(Health{State: StateFailed, Reason: err.Error()})
		return err
	}
	defer func() {
		for _, b := range bs {
			b.Close()
		}
	}()
	defer s.Close()
	srv, err := fusefs.Mount(mc.Mountpoint, s, fusefs.Options{CacheDir: mc.CacheDir, Logger: mc.Log, AllowOther: true})
	if err != nil {
		err = fmt.Errorf("mount %s: %w (is /dev/fuse there and fusermount3 installed?)", mc.Mountpoint, err)
		report(Health{State: StateFailed, Reason: err.Error()})
		return err
	}
	mc.Log.Info("mounted", "mountpoint", mc.Mountpoint)
	w := &watcher{mc: mc, s: s, bs: bs, report: report}
	w.probe(ctx)
	var wg sync.WaitGroup
	wg.Go(func() { w.run(ctx) })
	<-ctx.Done()
	wg.Wait()
	err = fusefs.Unmount(srv, mc.Mountpoint, 10*time.Second, 5*time.Second)
	if errors.Is(err, fusefs.ErrLingering) {
		return nil
	}
	return err
}

// openStore opens the store, initialising it when no backend holds one.
func openStore(ctx context.Context, mc MountConfig) (*catalog.Store, []*breaker, error) {
	cfg, err := catalog.LoadConfig(mc.ConfigFile)
	if err != nil {
		return nil, nil, err
	}
	secret, err := catalog.StorageSecret(mc.Mnemonic)
	if err != nil {
		return nil, nil, err
	}
	defer clear(secret)
	inner, err := cfg.OpenBackends(mc.Log)
	if err != nil {
		return nil, nil, err
	}
	bs := make([]*breaker, len(inner))
	wrapped := make([]storage.Backend, len(inner))
	for i, b := range inner {
		bs[i] = &breaker{Backend: b}
		wrapped[i] = bs[i]
	}
	opts := catalog.Options{Params: cfg.Params(), Backends: wrapped, Logger: mc.Log}
	for {
		s, err := catalog.Open(ctx, opts, secret)
		if errors.Is(err, catalog.ErrNoRoot) {
			// Init refuses backends that hold another store's roots.
			s, err = catalog.Init(ctx, opts, secret)
		}
		if err == nil {
			return s, bs, nil
		}
		if !errors.Is(err, storage.ErrUnavailable) || ctx.Err() != nil {
			catalog.CloseBackends(inner)
			return nil, nil, err
		}
		mc.Log.Warn("store not reachable yet; retrying", "err", err)
		select {
		case <-ctx.Done():
			catalog.CloseBackends(inner)
			return nil, nil, ctx.Err()
		case <-time.After(2 * time.Second):
		}
	}
}

// watcher probes the backends that hold shards and repairs.
type watcher struct {
	mc     MountConfig
	s      *catalog.Store
	bs     []*breaker
	report func(Health)

	downSince time.Time // since when some backends holding shards are down
	lastScrub time.Time
}

func (w *watcher) run(ctx context.Context) {
	w.lastScrub = time.Now()
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(w.mc.CheckEvery):
		}
		down := w.probe(ctx)
		now := time.Now()
		switch {
		case len(down) > 0 && now.Sub(w.downSince) >= w.mc.RepairAfter:
			w.repair(ctx, "backends unreachable for "+w.mc.RepairAfter.String()+": "+strings.Join(down, ", "))
		case now.Sub(w.lastScrub) >= w.mc.ScrubEvery:
			w.lastScrub = now
			w.repair(ctx, "scrub")
		}
	}
}

// holders are the backends holding shards of the store's files.
func (w *watcher) holders() map[string]bool {
	held := map[string]bool{}
	for _, e := range w.s.List("") {
		for _, seg := range e.Segments {
			for _, sh := range seg.Shards {
				held[sh.Backend] = true
			}
		}
	}
	return held
}

// probe asks every backend whether it answers (and trips or resets its
// breaker), reports the health from those holding shards and returns the
// holders that are down.
func (w *watcher) probe(ctx context.Context) []string {
	held := w.holders()
	var down []string
	var mu sync.Mutex
	var wg sync.WaitGroup
	for _, b := range w.bs {
		wg.Go(func() {
			pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
			defer cancel()
			_, err := b.Backend.Stat(pctx, probeName)
			up := err == nil || errors.Is(err, storage.ErrNotFound)
			if ctx.Err() == nil {
				b.down.Store(!up)
			}
			if !up && held[b.ID()] {
				mu.Lock()
				down = append(down, b.ID())
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if ctx.Err() != nil {
		return nil
	}
	slices.Sort(down)
	if len(down) == 0 {
		w.downSince = time.Time{}
		w.report(Health{State: StateHealthy})
		return nil
	}
	if w.downSince.IsZero() {
		w.downSince = time.Now()
	}
	w.report(Health{State: StateDegraded, Missing: down,
		Reason: fmt.Sprintf("%d backend(s) holding shards do not answer: %s; data is read around them, and their shards are rebuilt on the other backends if they stay down for %s", len(down), strings.Join(down, ", "), w.mc.RepairAfter)})
	return down
}

// repair runs a repair pass and probes again.
func (w *watcher) repair(ctx context.Context, why string) {
	w.mc.Log.Info("repair", "why", why)
	rep, err := w.s.Repair(ctx, catalog.RepairOptions{})
	switch {
	case ctx.Err() != nil:
		return
	case err != nil:
		w.mc.Log.Warn("repair failed", "err", err)
	default:
		w.mc.Log.Info("repair done", "rebuilt", len(rep.Repaired), "failed", len(rep.Failed), "committed", rep.Committed)
	}
	w.downSince = time.Time{}
	if down := w.probe(ctx); len(down) > 0 {
		w.downSince = time.Now() // holders still down: try again after RepairAfter
	}
}
