package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net/netip"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
	"github.com/zerogrid/zerogrid/internal/node"
	"github.com/zerogrid/zerogrid/internal/overlay"
	"github.com/zerogrid/zerogrid/internal/release"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
	"github.com/zerogrid/zerogrid/internal/workload/container"
	"github.com/zerogrid/zerogrid/internal/workload/gatewayname"
	"github.com/zerogrid/zerogrid/internal/workload/idmap"
	"github.com/zerogrid/zerogrid/internal/workload/network"
	"github.com/zerogrid/zerogrid/internal/workload/volume"
)

// Version is this build's software version, reported in heartbeats.
const Version = "0.1.0"

type nodeFlags struct {
	ledger, key, data, approval, runDir, subnet string
	trustRoot                                   string
	idPool                                      string // FIRST:COUNT; empty: idmap.DefaultPool
	overlay                                     string // IP:PORT announced and listened on; empty: no overlay
	farm                                        uint64
	heartbeat                                   time.Duration
	pqGrace                                     time.Duration
	insecure                                    []string
	releaseRoot, hub                            string
	releaseEvery                                time.Duration
}

func newNodeCmd(g *globals) *cobra.Command {
	f := &nodeFlags{}
	cmd := &cobra.Command{
		Use:   "node --ledger URL --key FILE --farm ID --data DIR",
		Short: "Run a node agent: pull contracts from the ledger and run them; no shell, no listener",
		Long: `Runs the node agent. It registers the node key (--key, made with
'zgrid key new --kind node') in the farm on first start, using the farm
owner's approval (--approval FILE, from 'zgrid farm approve-node'), then
reports its capacity, and turns the contracts addressed to it into running
workloads. It only dials out: it opens no listening socket and runs no remote
command. At start it checks what each workload type needs (runc for
containers, ip and nft for private networks, e2fsprogs and loop devices for
size-limited volumes): a type it cannot run is not offered, and its heartbeat
says why and which Debian package to install. Stop it with Ctrl-C or SIGTERM: workloads keep running and the next
start adopts them. The key file's passphrase comes from ZGRID_PASSPHRASE or a
prompt.

The node trusts no validator: it verifies every block header it uses with
CometBFT's light client and every answer against a header's app hash, from
a trusted state it keeps in DATA/ledger-trust.json. On its first start that
state comes from --trust-root FILE (a trust file from 'zgrid up' or
'zgridd chain') or from the farm approval (which carries the farm owner's
verified view of the chain); the node never takes its chain id or validators
from the ledger it asks.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			err := runNode(cmd, g, f)
			var re *reexec
			if errors.As(err, &re) {
				// everything runNode opened is closed: hand the process over
				return release.ExecMemory(re.up, os.Args, os.Environ())
			}
			return err
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.ledger, "ledger", "http://127.0.0.1:26657", "ledger RPC URL")
	fl.StringVar(&f.key, "key", "", "the node's key file")
	fl.Uint64Var(&f.farm, "farm", 0, "farm this node belongs to")
	fl.StringVar(&f.data, "data", "", "data directory (workloads, images, event journals)")
	fl.StringVar(&f.approval, "approval", "", "farm owner's approval file, needed on first registration")
	fl.StringVar(&f.trustRoot, "trust-root", "", "trust file to start verifying the ledger from on first start (default: the approval's)")
	fl.StringVar(&f.runDir, "run-dir", "", "tmpfs directory for container bundles (default /run/zerogrid/<instance>)")
	fl.StringVar(&f.subnet, "subnet", "", "IPv4 range for container links, /30 each (default 10.250.0.0/16)")
	fl.StringVar(&f.idPool, "id-pool", "", fmt.Sprintf("host user ids for containers' user namespaces: COUNT ranges of %d from FIRST, as FIRST:COUNT (default %#x:%d); nodes sharing a machine need pools that do not overlap",
		idmap.Size, idmap.DefaultPool.First, idmap.DefaultPool.Count))
	fl.DurationVar(&f.heartbeat, "heartbeat", 30*time.Second, "how often to report capacity, the workload types this node runs and its conditions")
	fl.StringSliceVar(&f.insecure, "insecure-registry", nil, "HOST:PORT of a registry reached over plain HTTP (images are still verified by digest)")
	fl.StringVar(&f.overlay, "overlay", "", "join the overlay: IP:PORT of this node's UDP endpoint, announced on the ledger (needs root and /dev/net/tun)")
	fl.StringVar(&f.releaseRoot, "release-root", "", "root metadata of the release repository this node takes its software from (with --hub)")
	fl.StringVar(&f.hub, "hub", "", "hub URL serving the release repository under /tuf/")
	fl.DurationVar(&f.releaseEvery, "release-every", time.Minute, "how often to check for a new release")
	fl.DurationVar(&f.pqGrace, "pq-grace", overlay.DefaultPQGrace, fmt.Sprintf("on the overlay: how long traffic with a peer may flow without a post-quantum key before it stops (at most %s; it cannot be turned off)", overlay.MaxPQGrace))
	return cmd
}

func runNode(cmd *cobra.Command, g *globals, f *nodeFlags) error {
	if f.key == "" || f.farm == 0 || f.data == "" {
		return fmt.Errorf("--key FILE, --farm ID and --data DIR are required")
	}
	log := g.logger()
	key, err := loadNodeKey(f.key)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(f.data, 0o700); err != nil {
		return err
	}
	ctx := cmd.Context()
	up, err := startRelease(ctx, f, log)
	if err != nil {
		return err
	}
	ctx, stopAgent := context.WithCancel(ctx)
	defer stopAgent()
	var pending *release.Update
	approval, err := readApproval(f.approval)
	if err != nil {
		return err
	}
	opts, err := node.LedgerTrust(f.data, f.trustRoot, approval)
	if err != nil {
		return err
	}
	opts.Logger = log
	c, err := dialLedger(ctx, f.ledger, opts)
	if err != nil {
		return err
	}
	defer c.Close()
	var ap *ledger.FarmApproval
	if approval != nil {
		ap = &approval.FarmApproval
	}
	id, err := node.Register(ctx, c, key, f.farm, ap, log)
	if err != nil {
		return err
	}
	ov, announce, err := startOverlay(f, key, c.Chain(), log)
	if err != nil {
		return err
	}
	if ov != nil {
		defer ov.Close()
	}
	ms, err := newManagers(f, log, key, c, id, ov)
	if err != nil {
		return err
	}
	defer ms.close()
	signer := c.Signer(key) // one sequence for heartbeats, accepts and reports
	cfg := node.Config{Client: c, Key: key, Signer: signer, NodeID: id, Managers: ms.byType,
		CannotRun: ms.cannotRun, DataDir: f.data, Logger: log}
	if up != nil {
		cfg.Gate = up.BelowMinimum
	}
	r, err := node.NewReconciler(cfg)
	if err != nil {
		return err
	}
	types, conds := ms.report()
	a := node.Agent{Reconciler: r, Signer: signer, HeartbeatEvery: f.heartbeat, Logger: log,
		Report: func() (*ledger.NodeHeartbeat, error) {
			capa, err := node.MeasureCapacity(f.data, spec.Resources{CPU: 250, Memory: 256 << 20, Disk: 1 << 30})
			if err != nil {
				return nil, fmt.Errorf("measure capacity: %w", err)
			}
			return &ledger.NodeHeartbeat{Capacity: capa, Version: runningVersion(up), Overlay: announce, Types: types,
				Conditions: slices.Concat(conds, node.LedgerConditions(c, time.Now()), overlayConditions(ov), releaseConditions(up))}, nil
		}}
	if ov != nil {
		a.Overlay, a.Nodes, a.NodeID, a.OverlayEvery = overlayPeers{ov}, c, id, 3*time.Second
		if m, ok := ms.byType[spec.TypeNetwork].(*network.Manager); ok {
			a.Networks = hostedNetworks{m}
		}
	}
	fmt.Fprintf(cmd.OutOrStdout(), "node ready: node %d farm %d key %s release %s\n", id, f.farm, key.Public().NodeString(), runningVersion(up))
	done := make(chan struct{})
	if up != nil {
		go func() {
			defer close(done)
			if u := up.Run(ctx); u != nil {
				pending = u
				log.Info("stopping the agent to run the new release", "version", u.Release.Version)
				stopAgent()
			}
		}()
	} else {
		close(done)
	}
	err = a.Run(ctx) // returns once its loops are done: the deferred closes come after
	stopAgent()
	<-done
	if pending != nil {
		return &reexec{up: pending}
	}
	return err
}

// reexec asks newNodeCmd to run a verified release in place of this
// program once runNode has closed everything it opened.
type reexec struct{ up *release.Update }

func (r *reexec) Error() string { return "re-executing release " + r.up.Release.Version }

// startRelease verifies the node's own software against the release
// repository before anything else runs: if a newer verified release is
// there, it is returned as a reexec at once. A refusal leaves the running
// software in charge and is reported as a condition.
func startRelease(ctx context.Context, f *nodeFlags, log *slog.Logger) (*release.Updater, error) {
	if f.releaseRoot == "" {
		return nil, nil
	}
	if f.hub == "" {
		return nil, fmt.Errorf("--release-root needs --hub URL: the hub serving the release repository")
	}
	root, err := os.ReadFile(f.releaseRoot)
	if err != nil {
		return nil, fmt.Errorf("--release-root: %w", err)
	}
	self, err := release.SelfHash()
	if err != nil {
		return nil, fmt.Errorf("hash the running binary: %w", err)
	}
	dir := filepath.Join(f.data, "release")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	up := &release.Updater{Client: &release.Client{Hub: f.hub, Dir: dir, Root: root}, Self: self, Every: f.releaseEvery,
		Log: log.With("module", "release")}
	up.Init()
	if u := up.Step(ctx); u != nil {
		log.Info("running the verified release", "version", u.Release.Version)
		return nil, &reexec{up: u}
	}
	return up, nil
}

// runningVersion is what the heartbeat reports as the node's software:
// the verified release version, or the build's version marked unverified.
func runningVersion(up *release.Updater) string {
	if up != nil {
		if v := up.Version(); v != "" {
			return v
		}
	}
	return Version + "+unverified"
}

func releaseConditions(up *release.Updater) []ledger.NodeCondition {
	if up == nil {
		return []ledger.NodeCondition{{Type: "release-unverified",
			Reason: "started without --release-root: this node's software is not checked against signed releases"}}
	}
	var out []ledger.NodeCondition
	for _, c := range up.Conditions() {
		out = append(out, ledger.NodeCondition{Type: c.Type, Reason: conditionReason(c.Reason)})
	}
	return out
}

func loadNodeKey(path string) (identity.PrivateKey, error) {
	pass, err := identity.Passphrase("Passphrase for "+path+": ", false, os.Stdin, os.Stderr)
	if err != nil {
		return identity.PrivateKey{}, err
	}
	kf, err := identity.ReadKeyFile(path, pass)
	if err != nil {
		return identity.PrivateKey{}, err
	}
	if kf.Kind != identity.KindNode {
		return identity.PrivateKey{}, fmt.Errorf("%s is a %s key: a node needs its own key (zgrid key new --kind node)", path, kf.Kind)
	}
	return kf.Key, nil
}

// dialLedger waits for the ledger to answer, so that a node started with
// (or before) its validator does not give up. An answer that does not
// verify is not waited out: it is refused at once.
func dialLedger(ctx context.Context, url string, opts client.Options) (*client.Client, error) {
	for {
		c, err := client.Dial(ctx, url, opts)
		if err == nil || errors.Is(err, client.ErrUntrusted) || errors.Is(err, client.ErrNoTrust) {
			return c, err
		}
		select {
		case <-ctx.Done():
			return nil, err
		case <-time.After(time.Second):
		}
	}
}

func readApproval(path string) (*node.ApprovalFile, error) {
	if path == "" {
		return nil, nil
	}
	return node.ReadApprovalFile(path)
}

// managers are the workload managers of this node, by type, and why it
// has none for the types whose prerequisites are missing.
type managers struct {
	byType    map[string]workload.Manager
	cannotRun map[string]string // type -> reason, as reported in heartbeats
	// volumeLimits says why volume sizes are not enforced; nil when they are.
	volumeLimits error
}

// add registers m for typ, or records why this node cannot run typ when
// err says its prerequisites are missing. Any other error is returned.
func (ms *managers) add(typ string, m workload.Manager, err error, log *slog.Logger) error {
	var un *workload.UnavailableError
	switch {
	case errors.As(err, &un):
		ms.cannotRun[typ] = conditionReason(un.Reason)
		log.Warn("this node will refuse "+typ+" workloads", "reason", un.Reason)
		return nil
	case err != nil:
		return err
	}
	ms.byType[typ] = m
	return nil
}

// report is what heartbeats say about the managers: the types this node
// runs and its conditions.
func (ms *managers) report() ([]string, []ledger.NodeCondition) {
	types := slices.Sorted(maps.Keys(ms.byType))
	var conds []ledger.NodeCondition
	for _, t := range slices.Sorted(maps.Keys(ms.cannotRun)) {
		conds = append(conds, ledger.NodeCondition{Type: ledger.CannotRunPrefix + t, Reason: ms.cannotRun[t]})
	}
	if ms.volumeLimits != nil {
		conds = append(conds, ledger.NodeCondition{Type: "volume-size-not-enforced", Reason: conditionReason(ms.volumeLimits.Error())})
	}
	return types, conds
}

// conditionReason cuts s to what the ledger takes as a condition's
// reason, so that a long one cannot make every heartbeat invalid.
func conditionReason(s string) string {
	if len(s) <= ledger.MaxConditionReason {
		return s
	}
	return strings.ToValidUTF8(s[:ledger.MaxConditionReason], "")
}

func (ms *managers) close() {
	for _, m := range ms.byType {
		_ = m.Close()
	}
}

func newManagers(f *nodeFlags, log *slog.Logger, key identity.PrivateKey, c *client.Client, nodeID uint64, ov *overlay.Overlay) (*managers, error) {
	chain := c.Chain()
	ms := &managers{byType: map[string]workload.Manager{}, cannotRun: map[string]string{}}
	clock := workload.SystemClock{}
	pool, err := parsePool(f.idPool)
	if err != nil {
		return nil, err
	}
	ids, err := idmap.Open(f.data, pool) // one for containers and volumes: a deployment's range is theirs
	if err != nil {
		return nil, err
	}
	vol, err := volume.New(volume.Config{DataDir: f.data, Log: log.With("workload", "volume"), Clock: clock, IDs: ids})
	if err := ms.add(spec.TypeVolume, vol, err, log); err != nil {
		return nil, err
	}
	if vol != nil {
		ms.volumeLimits = vol.Unenforced()
	}
	cc := container.Config{DataDir: f.data, RunDir: f.runDir, InsecureRegistries: f.insecure, Log: log.With("workload", "container"), Clock: clock, IDs: ids}
	if f.subnet != "" {
		if cc.Subnet, err = netip.ParsePrefix(f.subnet); err != nil {
			ms.close()
			return nil, fmt.Errorf("--subnet %q: %w", f.subnet, err)
		}
	}
	ctr, err := container.New(cc)
	if err := ms.add(spec.TypeContainer, ctr, err, log); err != nil {
		ms.close()
		return nil, err
	}
	gwl := log.With("workload", "gateway-name")
	gws, err := gatewayname.New(gatewayname.Config{DataDir: f.data, Log: gwl, Clock: clock, Key: key, Command: tunnelClientCommand,
		Resolve: func(ctx context.Context, k identity.PublicKey) (string, error) {
			g, err := c.Gateway(ctx, k)
			if err != nil {
				return "", err
			}
			return g.Address, nil
		}})
	if err := ms.add(spec.TypeGatewayName, gws, err, log); err != nil {
		ms.close()
		return nil, err
	}
	tools, err := network.LookTools()
	var nets *network.Manager
	if err == nil {
		nets, err = network.New(network.Config{DataDir: f.data, Log: log.With("workload", "network"), Clock: clock,
			Chain: chain, NodeID: nodeID, Tools: tools, OverlayDev: overlayDev(ov)})
	}
	if err := ms.add(spec.TypeNetwork, nets, err, log); err != nil {
		ms.close()
		return nil, err
	}
	if err := addZDB(ms, f, log, ov); err != nil {
		ms.close()
		return nil, err
	}
	if err := addQSFS(ms, f, log, c); err != nil {
		ms.close()
		return nil, err
	}
	return ms, nil
}

// parsePool reads --id-pool FIRST:COUNT (decimal, or hex with 0x).
func parsePool(s string) (idmap.Pool, error) {
	if s == "" {
		return idmap.DefaultPool, nil
	}
	first, count, ok := strings.Cut(s, ":")
	f, err1 := strconv.ParseUint(first, 0, 32)
	c, err2 := strconv.Atoi(count)
	p := idmap.Pool{First: uint32(f), Count: c}
	if !ok || err1 != nil || err2 != nil {
		return p, fmt.Errorf("--id-pool %q: want FIRST:COUNT, e.g. %#x:%d", s, idmap.DefaultPool.First, idmap.DefaultPool.Count)
	}
	if err := p.Check(); err != nil {
		return p, fmt.Errorf("--id-pool: %w", err)
	}
	return p, nil
}
