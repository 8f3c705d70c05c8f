package node

import (
	"context"
	"crypto/rand"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/eventlog"
	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
	"github.com/zerogrid/zerogrid/internal/ledger/ledgertest"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload"
)

// grid is a real ledger with a user twin and one registered node.
type grid struct {
	t       *testing.T
	c       *client.Client
	user    identity.PrivateKey
	twin    uint64
	nodeKey identity.PrivateKey
	nodeID  uint64
}

// newGrid runs the ledger in process (no CometBFT: same client, same
// proofs); newGridRPC runs a real validator for what needs its RPC.
func newGrid(t *testing.T) *grid {
	_, c := ledgertest.Memory(t, nil)
	return setUpGrid(t, c)
}

func newGridRPC(t *testing.T) *grid { return setUpGrid(t, ledgertest.Start(t, nil)) }

func setUpGrid(t *testing.T, c *client.Client) *grid {
	g := &grid{t: t, c: c}
	ctx := t.Context()
	g.user, _ = identity.GenerateKey(rand.Reader)
	g.nodeKey, _ = identity.GenerateKey(rand.Reader)
	g.twin = g.submit(g.user, ledger.Op{TwinRegister: &ledger.TwinRegister{}})
	farm := g.submit(g.user, ledger.Op{FarmCreate: &ledger.FarmCreate{Name: "f"}})
	ap, _ := ledger.NewFarmApproval(g.user, g.c.Chain(), farm, g.nodeKey.Public(), time.Now().Add(time.Hour).Unix())
	var err error
	if g.nodeID, err = Register(ctx, g.c, g.nodeKey, farm, &ap, slog.New(slog.DiscardHandler)); err != nil {
		t.Fatal(err)
	}
	g.submit(g.nodeKey, ledger.Op{NodeHeartbeat: &ledger.NodeHeartbeat{Types: spec.AllTypes, Capacity: spec.Resources{CPU: 4000, Memory: 4 << 30, Disk: 100 << 30}}})
	return g
}

func (g *grid) submit(k identity.PrivateKey, op ledger.Op) uint64 {
	g.t.Helper()
	res, err := g.c.Signer(k).Submit(g.t.Context(), op)
	if err != nil {
		g.t.Fatalf("%s: %v", op.Kind(), err)
	}
	return res.ID
}

func webSpec(t *testing.T) []byte {
	t.Helper()
	ctr := spec.Workload{Name: "web", Type: spec.TypeContainer, Resources: spec.Resources{CPU: 500, Memory: 64 << 20}}
	if err := ctr.SetConfig(spec.ContainerConfig{Image: "127.0.0.1:5000/hello@sha256:" + string(make64('a')),
		Mounts: []spec.Mount{{Volume: "data", Path: "/data"}}, SecretEnv: []string{"TOKEN"}}); err != nil {
		t.Fatal(err)
	}
	vol := spec.Workload{Name: "data", Type: spec.TypeVolume, Resources: spec.Resources{Disk: 1 << 30}}
	_ = vol.SetConfig(spec.VolumeConfig{})
	raw, err := (&spec.Spec{Version: 1, Workloads: []spec.Workload{ctr, vol}}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func make64(c byte) []byte {
	b := make([]byte, 64)
	for i := range b {
		b[i] = c
	}
	return b
}

// deploy creates a contract whose spec is signed by signer (a key of twin).
func (g *grid) deploy(signer identity.PrivateKey, raw []byte) uint64 {
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	sealed := g.seal(nonce, 1)
	d := ledger.DeploymentFor(g.c.Chain(), g.twin, g.nodeID, nonce, 1, raw, sealed)
	sig, _ := signer.Sign(ledger.TagDeployment, ledger.TxVersion, d)
	return g.submit(g.user, ledger.Op{ContractCreate: &ledger.ContractCreate{Node: g.nodeID, Nonce: nonce, Spec: raw, Secrets: sealed,
		SpecSig: ledger.Sig{Key: signer.Public(), Sig: sig}}})
}

// seal seals the test's secrets to the node for one generation.
func (g *grid) seal(nonce []byte, gen uint64) []byte {
	node, err := g.c.Node(g.t.Context(), g.nodeID)
	if err != nil {
		g.t.Fatal(err)
	}
	pub, err := node.Seal()
	if err != nil {
		g.t.Fatal(err)
	}
	sealed, err := spec.SealSecrets(pub, spec.SecretsContext{Chain: g.c.Chain(), Twin: g.twin, Node: g.nodeID, Nonce: nonce, Generation: gen},
		map[string][]byte{"TOKEN": []byte("s3cret")})
	if err != nil {
		g.t.Fatal(err)
	}
	return sealed
}

// agent is a running reconciler over in-memory managers.
type agent struct {
	cancel   context.CancelFunc
	done     chan struct{}
	ctr, vol *workload.Inmem
}

func (g *grid) start(dataDir string, ctr, vol *workload.Inmem) *agent {
	a := &agent{done: make(chan struct{}), ctr: ctr, vol: vol}
	r, err := NewReconciler(Config{Client: g.c, Key: g.nodeKey, NodeID: g.nodeID, DataDir: dataDir,
		Managers: map[string]workload.Manager{spec.TypeContainer: ctr, spec.TypeVolume: vol},
		Resync:   time.Second, Tick: 100 * time.Millisecond})
	if err != nil {
		g.t.Fatal(err)
	}
	var ctx context.Context
	ctx, a.cancel = context.WithCancel(g.t.Context())
	go func() { defer close(a.done); _ = r.Run(ctx) }()
	g.t.Cleanup(a.stop)
	return a
}

func (a *agent) stop() {
	a.cancel()
	<-a.done
}

// waitState polls the contract until cond holds.
func (g *grid) wait(id uint64, what string, cond func(*ledger.Contract) bool) *ledger.Contract {
	g.t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		c, err := g.c.Contract(g.t.Context(), id)
		if err == nil && cond(c) {
			return c
		}
		if time.Now().After(deadline) {
			if c != nil {
				g.t.Fatalf("contract %d never %s: state %s (%s), generation %d accepted %d, workloads %+v", id, what, c.State, c.Reason, c.Generation, c.Accepted, c.Workloads)
			}
			g.t.Fatalf("contract %d never %s: %v", id, what, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestReconcilerLifecycle(t *testing.T) {
	t.Parallel()
	g := newGrid(t)
	dataDir := t.TempDir()
	clock := workload.SystemClock{}
	ctr, vol := workload.NewInmem(spec.TypeContainer, clock), workload.NewInmem(spec.TypeVolume, clock)
	a := g.start(dataDir, ctr, vol)
	id := g.deploy(g.user, webSpec(t))
	g.wait(id, "ready", func(c *ledger.Contract) bool { return c.State == ledger.StateReady })
	web := workload.Ref{Deployment: id, Name: "web"}

	// A crash is restarted by the manager and the event log says so.
	if err := ctr.Crash(web, 137); err != nil {
		t.Fatal(err)
	}
	g.wait(id, "reported the restart", func(c *ledger.Contract) bool {
		log, err := g.c.ContractEvents(t.Context(), id)
		if err != nil {
			return false
		}
		for _, e := range log.Events {
			if e.Event.Kind == eventlog.KindRestarted && e.Event.Workload == "web" {
				return true
			}
		}
		return false
	})

	// The agent restarts: everything is adopted, nothing is created twice.
	a.stop()
	before := g.mustContract(id).EventSeq
	g.start(dataDir, ctr.Restart(), vol.Restart())
	g.wait(id, "re-reported after restart", func(c *ledger.Contract) bool { return c.EventSeq > before && c.State == ledger.StateReady })
	if n := ctr.Counts(web).Creates; n != 1 {
		t.Fatalf("container created %d times across a restart", n)
	}
	if n := vol.Counts(workload.Ref{Deployment: id, Name: "data"}).Creates; n != 1 {
		t.Fatalf("volume created %d times across a restart", n)
	}
	if _, err := g.c.ContractEvents(t.Context(), id); err != nil {
		t.Fatalf("event log after restart: %v", err)
	}

	// Cancel removes everything.
	g.submit(g.user, ledger.Op{ContractCancel: &ledger.ContractCancel{Contract: id}})
	deadline := time.Now().Add(20 * time.Second)
	for ctr.Counts(web).Removes != 1 || vol.Counts(workload.Ref{Deployment: id, Name: "data"}).Removes != 1 {
		if time.Now().After(deadline) {
			t.Fatal("cancelled contract's workloads not removed")
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (g *grid) mustContract(id uint64) *ledger.Contract {
	c, err := g.c.Contract(g.t.Context(), id)
	if err != nil {
		g.t.Fatal(err)
	}
	return c
}

// TestReconcilerRefusesRevokedSigner: a spec signed by a key the owner
// revoked before the node saw it is never run, and the status says why.
func TestReconcilerRefusesRevokedSigner(t *testing.T) {
	t.Parallel()
	g := newGrid(t)
	dev, _ := identity.GenerateKey(rand.Reader)
	cert, _ := g.user.CertifyDevice(identity.DeviceCert{Twin: g.twin, Device: dev.Public(), Name: "laptop", Created: time.Now().Unix()})
	proof, _ := identity.ProvePossession(dev, ledger.DeviceProof{Chain: g.c.Chain(), Twin: g.twin, Device: dev.Public()})
	g.submit(g.user, ledger.Op{TwinAddKey: &ledger.TwinAddKey{Cert: cert, Proof: proof}})
	id := g.deploy(dev, webSpec(t))
	g.submit(g.user, ledger.Op{TwinRevokeKey: &ledger.TwinRevokeKey{Key: dev.Public()}})
	clock := workload.SystemClock{}
	ctr, vol := workload.NewInmem(spec.TypeContainer, clock), workload.NewInmem(spec.TypeVolume, clock)
	g.start(t.TempDir(), ctr, vol)
	c := g.wait(id, "refused", func(c *ledger.Contract) bool { return c.State == ledger.StateFailed })
	if c.Accepted != 0 || c.Reason == "" {
		t.Fatalf("refused contract: accepted %d reason %q", c.Accepted, c.Reason)
	}
	if n := ctr.Counts(workload.Ref{Deployment: id, Name: "web"}).Creates; n != 0 {
		t.Fatal("a refused spec was run")
	}
	t.Logf("refusal reason: %s", c.Reason)
}

// TestReconcilerManyDeployments runs several deployments at once: their
// accepts and reports share the node's sequence numbers without conflicts.
func TestReconcilerManyDeployments(t *testing.T) {
	t.Parallel()
	g := newGrid(t)
	clock := workload.SystemClock{}
	ctr, vol := workload.NewInmem(spec.TypeContainer, clock), workload.NewInmem(spec.TypeVolume, clock)
	g.start(t.TempDir(), ctr, vol)
	var ids []uint64
	for range 5 {
		ids = append(ids, g.deploy(g.user, webSpec(t)))
	}
	for _, id := range ids {
		g.wait(id, "ready", func(c *ledger.Contract) bool { return c.State == ledger.StateReady })
		if n := ctr.Counts(workload.Ref{Deployment: id, Name: "web"}).Creates; n != 1 {
			t.Fatalf("contract %d: container created %d times", id, n)
		}
	}
}

// TestReconcilerUpdateTouchesOnlyChanged: generation 2 changes the
// container's environment only; the container is converged, the volume is
// left alone, and a workload dropped from the spec is removed.
func TestReconcilerUpdateTouchesOnlyChanged(t *testing.T) {
	t.Parallel()
	g := newGrid(t)
	clock := workload.SystemClock{}
	ctr, vol := workload.NewInmem(spec.TypeContainer, clock), workload.NewInmem(spec.TypeVolume, clock)
	g.start(t.TempDir(), ctr, vol)
	id := g.deploy(g.user, webSpec(t))
	c := g.wait(id, "ready", func(c *ledger.Contract) bool { return c.State == ledger.StateReady })

	s, err := spec.Decode(c.Spec)
	if err != nil {
		t.Fatal(err)
	}
	var cfg spec.ContainerConfig
	if err := s.Workloads[0].DecodeConfig(&cfg); err != nil {
		t.Fatal(err)
	}
	cfg.Env = map[string]string{"GREETING": "generation 2"}
	if err := s.Workloads[0].SetConfig(cfg); err != nil {
		t.Fatal(err)
	}
	raw, err := s.Encode()
	if err != nil {
		t.Fatal(err)
	}
	// Secrets are sealed to one generation: they must be sealed again.
	sealed := g.seal(c.Nonce, 2)
	d := ledger.DeploymentFor(g.c.Chain(), g.twin, g.nodeID, c.Nonce, 2, raw, sealed)
	sig, _ := g.user.Sign(ledger.TagDeployment, ledger.TxVersion, d)
	g.submit(g.user, ledger.Op{ContractUpdate: &ledger.ContractUpdate{Contract: id, Generation: 2, Spec: raw, Secrets: sealed,
		SpecSig: ledger.Sig{Key: g.user.Public(), Sig: sig}}})
	g.wait(id, "ready at generation 2", func(c *ledger.Contract) bool {
		return c.State == ledger.StateReady && c.Accepted == 2 && c.ReportGen == 2
	})
	web, data := workload.Ref{Deployment: id, Name: "web"}, workload.Ref{Deployment: id, Name: "data"}
	if n := ctr.Counts(web); n.Creates != 1 || n.Updates != 1 {
		t.Fatalf("container after update: %+v", n)
	}
	if n := vol.Counts(data); n.Creates != 1 || n.Updates != 0 || n.Removes != 0 {
		t.Fatalf("volume touched by an update that did not change it: %+v", n)
	}
	if w, _ := ctr.Workload(web); !strings.Contains(string(w.Config), "generation 2") {
		t.Fatal("container not converged to generation 2")
	}
}
