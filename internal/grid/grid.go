package grid

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zerogrid/zerogrid/internal/hub"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
	"github.com/zerogrid/zerogrid/internal/overlay"
)

// Config configures Run. Zero fields take the defaults named.
type Config struct {
	Dir        string // required; created if missing
	Nodes      int    // default 3
	LedgerAddr string // ledger RPC host:port, default 127.0.0.1:26657
	HubAddr    string // hub host:port, default 127.0.0.1:5000
	// GatewayAddr is the web gateway's HTTPS host:port, default
	// 127.0.0.1:8443.
	GatewayAddr string
	// Zgridd is the node agent binary; "" searches (see findZgridd).
	Zgridd string
	// BlockInterval is the ledger's block time (default 500ms), Heartbeat
	// the nodes' heartbeat period (default 10s).
	BlockInterval, Heartbeat time.Duration
	// ReleaseEvery is how often nodes check the hub for a new release of
	// their software (default 10s).
	ReleaseEvery time.Duration
	// Namespaces puts each node in its own network namespace; it needs
	// root.
	Namespaces bool
	// Host is the machine Run checks for what the grid needs (see
	// CheckHost) before it starts anything; nil means ThisHost().
	Host   *Host
	Log    *slog.Logger // default: discard
	Stdout io.Writer    // receives "grid ready"; default os.Stdout
	Rand   io.Reader    // default crypto/rand
}

func (c *Config) defaults() error {
	if c.Dir == "" {
		return errors.New("grid: no directory: pass --dir DIR")
	}
	abs, err := filepath.Abs(c.Dir)
	if err != nil {
		return err
	}
	c.Dir = abs
	if c.Nodes == 0 {
		c.Nodes = 3
	}
	if c.Nodes < 1 || c.Nodes > 200 {
		return fmt.Errorf("grid: --nodes %d: want 1 to 200", c.Nodes)
	}
	c.LedgerAddr = or(c.LedgerAddr, "127.0.0.1:26657")
	c.HubAddr = or(c.HubAddr, "127.0.0.1:5000")
	c.GatewayAddr = or(c.GatewayAddr, "127.0.0.1:8443")
	c.BlockInterval = or(c.BlockInterval, 500*time.Millisecond)
	c.Heartbeat = or(c.Heartbeat, 10*time.Second)
	c.ReleaseEvery = or(c.ReleaseEvery, 10*time.Second)
	c.Log = or(c.Log, slog.New(slog.DiscardHandler))
	c.Stdout = or[io.Writer](c.Stdout, os.Stdout)
	c.Rand = or[io.Reader](c.Rand, rand.Reader)
	if c.Host == nil {
		h := ThisHost()
		c.Host = &h
	}
	return nil
}

func or[T comparable](v, def T) T {
	var zero T
	if v == zero {
		return def
	}
	return v
}

// grid is one Run's state; undo holds what to tear down, in reverse.
type grid struct {
	cfg      Config
	log      *slog.Logger
	keys     *keys
	client   *client.Client
	net      hostNet
	nodes    []*nodeProc
	undo     []func()
	file     File
	started  time.Time
	userTwin uint64
	zgridd   string // the zgridd binary the nodes and the gateway run
	rel      *gridRelease
	// trustRoot is a file holding the chain's first block, which nodes
	// and the gateway start verifying from.
	trustRoot string
}

// Run checks that the machine has what the grid needs (CheckHost) and
// stops with a *MissingError before it starts anything when it does not.
// It starts the grid in cfg.Dir, prints "grid ready" to cfg.Stdout when
// every node has sent a heartbeat and none reports a condition (or the
// nodes' conditions and "grid ready with problems"), and runs until ctx is
// done or a node exits. Then it stops everything it started and removes the namespaces
// it made; the state in cfg.Dir stays for the next Run.
func Run(ctx context.Context, cfg Config) (err error) {
	if err := cfg.defaults(); err != nil {
		return err
	}
	if err := CheckHost(*cfg.Host); err != nil {
		return err
	}
	g := &grid{cfg: cfg, log: cfg.Log, file: File{Version: FileVersion}}
	defer g.teardown()
	if err := g.lock(); err != nil {
		return err
	}
	if g.keys, err = loadKeys(filepath.Join(cfg.Dir, "keys"), cfg.Nodes, cfg.Rand); err != nil {
		return err
	}
	if g.zgridd, err = findZgridd(ctx, cfg.Zgridd, filepath.Join(cfg.Dir, "bin"), g.log); err != nil {
		return err
	}
	if g.rel, err = setupRelease(cfg.Dir, g.zgridd, g.keys); err != nil {
		return fmt.Errorf("release repository: %w", err)
	}
	g.log.Info("zgridd is signed as a release", "version", g.rel.version, "repo", g.rel.repo.Dir)
	g.file.Release = g.rel.repo.Dir
	if err := g.startServices(ctx); err != nil {
		return err
	}
	go g.rel.refreshEvery(ctx, 6*time.Hour, g.file.Hub, g)
	if err := g.register(ctx); err != nil {
		return err
	}
	g.started = time.Now()
	if err := g.startNodes(ctx); err != nil {
		return err
	}
	if err := g.waitHeartbeats(ctx); err != nil {
		return err
	}
	g.buildExample(ctx)
	if err := writeJSON(filepath.Join(cfg.Dir, "grid.json"), g.file); err != nil {
		return err
	}
	if err := g.announce(ctx); err != nil {
		return err
	}
	return g.wait(ctx)
}

// announce prints the gateway's address and then "grid ready" when no
// node reports a condition. Otherwise it prints every node's conditions,
// as the ledger's node records hold them after this Run's heartbeats, and
// "grid ready with problems" instead.
func (g *grid) announce(ctx context.Context) error {
	out := g.cfg.Stdout
	if gw := g.file.Gateway; gw != nil {
		fmt.Fprintf(out, "gateway: %s (trust %s)\n", strings.Replace(gw.URL, "NAME", ExampleName, 1), gw.CA)
	}
	if p := g.file.Portal; p != nil {
		fmt.Fprintf(out, "portal: %s (trust %s; register a passkey at %sregister)\n", p.URL, p.CA, p.URL)
	}
	conds, troubled, err := g.settledConditions(ctx)
	if err != nil {
		return err
	}
	grid := filepath.Join(g.cfg.Dir, "grid.json")
	if troubled == 0 {
		fmt.Fprintln(out, "grid ready")
		g.log.Info("grid ready", "grid", grid, "ledger", g.file.Ledger, "hub", g.file.Hub)
		return nil
	}
	for _, c := range conds {
		fmt.Fprintln(out, c)
	}
	fmt.Fprintf(out, "grid ready with problems: %d of %d nodes report the conditions above, and the ledger refuses "+
		"deployments they cannot run; fix what they say (their logs are under %s), then run zgrid up again\n",
		troubled, len(g.file.Nodes), filepath.Join(g.cfg.Dir, "nodes"))
	g.log.Warn("grid ready with problems", "grid", grid, "conditions", len(conds))
	return nil
}

// settleFor bounds how long zgrid up waits for conditions that clear by
// themselves (a first post-quantum key exchange still being retried):
// past the overlay's grace period, such a peer is blocked instead.
const settleFor = overlay.DefaultPQGrace + 15*time.Second

// transient conditions clear by themselves while the grid starts.
var transient = map[string]bool{overlay.ConditionPQMissing: true}

// settledConditions reads the nodes' conditions from the ledger, waiting
// (up to settleFor, a heartbeat at a time) while some are transient. It
// returns them as lines and how many nodes have any.
func (g *grid) settledConditions(ctx context.Context) ([]string, int, error) {
	deadline := time.Now().Add(settleFor)
	for {
		var conds []string
		troubled, settling := 0, false
		for _, n := range g.file.Nodes {
			nd, err := g.client.Node(ctx, n.ID)
			if err != nil {
				return nil, 0, fmt.Errorf("read node %d's record: %w", n.ID, err)
			}
			for _, c := range nd.Conditions {
				conds = append(conds, fmt.Sprintf("node %d: %s: %s", n.ID, c.Type, c.Reason))
				settling = settling || transient[c.Type]
			}
			if len(nd.Conditions) > 0 {
				troubled++
			}
		}
		if !settling || time.Now().After(deadline) {
			return conds, troubled, nil
		}
		g.log.Info("waiting for the nodes' overlay to settle", "conditions", conds)
		select {
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		case <-time.After(g.cfg.Heartbeat):
		}
	}
}

// lock keeps a second Run off the same directory.
func (g *grid) lock() error {
	if err := os.MkdirAll(g.cfg.Dir, 0o700); err != nil {
		return err
	}
	f, err := os.OpenFile(filepath.Join(g.cfg.Dir, "lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return fmt.Errorf("%s is in use by another zgrid up (%w)", g.cfg.Dir, err)
	}
	g.undo = append(g.undo, func() { f.Close() })
	return nil
}

func (g *grid) teardown() {
	for i := len(g.undo) - 1; i >= 0; i-- {
		g.undo[i]()
	}
	g.undo = nil
}

// startServices starts the ledger and the hub in this process and, with
// namespaces, makes them reachable at the gateway address.
func (g *grid) startServices(ctx context.Context) error {
	v, err := startValidator(ctx, filepath.Join(g.cfg.Dir, "chain"), g.cfg.LedgerAddr, g.cfg.BlockInterval, g.log)
	if err != nil {
		return err
	}
	g.undo = append(g.undo, func() {
		g.log.Info("stopping ledger")
		if err := v.stop(); err != nil {
			g.log.Warn("stop ledger", "err", err)
		}
	})
	hubDir := filepath.Join(g.cfg.Dir, "hub")
	rel, err := g.rel.handler(hubDir)
	if err != nil {
		return err
	}
	rel.Log = g.log.With("module", "release")
	h, err := hub.New(hub.Config{Dir: hubDir, Logger: g.log.With("module", "hub"), Release: rel})
	if err != nil {
		return err
	}
	if err := rel.Init(); err != nil {
		return err
	}
	if err := h.Start(g.cfg.HubAddr); err != nil {
		return err
	}
	if err := g.rel.push(ctx, "http://"+h.Addr().String()); err != nil {
		h.Shutdown(context.Background())
		return fmt.Errorf("publish zgridd to the grid's hub: %w", err)
	}
	g.undo = append(g.undo, func() {
		g.log.Info("stopping hub")
		sctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = h.Shutdown(sctx)
	})
	g.file.Ledger = "http://" + v.node.RPCAddr()
	g.file.Hub = "http://" + h.Addr().String()
	// The grid's validator runs in this process: its first block, read
	// from its own store, is the trust root every client of the grid
	// verifies the ledger from.
	id, hash, err := v.node.FirstBlock(ctx)
	if err != nil {
		return err
	}
	g.file.Trust = filepath.Join(g.cfg.Dir, "trust.json")
	root := client.TrustRoot{Chain: id, Height: 1, Hash: hash, Period: client.DefaultTrustPeriod}
	if g.trustRoot, err = writeTrustRoot(g.file.Trust, root); err != nil {
		return err
	}
	if g.client, err = client.Dial(ctx, g.file.Ledger, client.Options{TrustRoot: &root}); err != nil {
		return err
	}
	g.undo = append(g.undo, g.client.Close)
	g.file.ChainID = g.client.Chain()
	return nil
}

// register makes the user's and the farmer's twins and the farm.
func (g *grid) register(ctx context.Context) error {
	var prev File
	if b, err := os.ReadFile(filepath.Join(g.cfg.Dir, "grid.json")); err == nil {
		_ = json.Unmarshal(b, &prev)
	}
	var err error
	if g.userTwin, err = ensureTwin(ctx, g.client, g.keys.user.Key); err != nil {
		return err
	}
	farmerTwin, err := ensureTwin(ctx, g.client, g.keys.farmer.Key)
	if err != nil {
		return err
	}
	if g.file.Farm, err = ensureFarm(ctx, g.client, g.keys.farmer.Key, farmerTwin, prev.Farm); err != nil {
		return err
	}
	g.file.UserKey = g.keys.userPath()
	g.file.PassphraseFile = g.keys.passFile
	return nil
}

// wait runs until ctx is done or a node exits.
func (g *grid) wait(ctx context.Context) error {
	exited := make(chan *nodeProc, len(g.nodes))
	for _, p := range g.nodes {
		go func() {
			select {
			case <-p.exited:
				exited <- p
			case <-ctx.Done():
			}
		}()
	}
	select {
	case <-ctx.Done():
		g.log.Info("stopping the grid")
		return nil
	case p := <-exited:
		return fmt.Errorf("node %d exited (%v): see %s", p.index, p.waitErr, filepath.Join(p.data, "..", "node.log"))
	}
}

func port(addr string) string {
	_, p, _ := net.SplitHostPort(addr)
	return p
}
