// Command node measures deploy-to-Ready latency on a local grid and the
// time a restarted node takes to bring its deployments back to Ready.
//
//	go run ./bench/node [-deployments 20] [-o json]
//
// It starts a grid with one node (internal/grid, in this process, in a
// temporary directory), deploys the example spec once and waits for Ready
// (this warms the node's image cache), then deploys -deployments more, one
// after another, each with its own nonce: the example container and
// volume, with cpu, memory and volume size lowered so that they all fit
// the node. Each deployment is timed from just before its transaction is
// submitted until the ledger shows the contract in state ready (polled
// every 50 ms).
//
// Then it kills the node process with SIGKILL. internal/grid has no way to
// restart one node: Run returns when a node exits and tears the grid down
// (which also removes the node's containers, mounts and namespaces), so the
// benchmark starts the whole grid again on the same directory, which
// re-adopts the ledger, keys and contracts. It reports the time from the
// kill, and from the second grid's "grid ready", until every contract has
// a higher event sequence than before the kill and state ready.
package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/zerogrid/zerogrid/internal/grid"
	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
	"github.com/zerogrid/zerogrid/internal/spec"
)

const poll = 50 * time.Millisecond

type report struct {
	Deployments     int       `json:"deployments"`
	Mode            string    `json:"mode"`
	WarmupMS        float64   `json:"warmup_ms"`
	LatenciesMS     []float64 `json:"latencies_ms"`
	P50MS           float64   `json:"p50_ms"`
	P99MS           float64   `json:"p99_ms"`
	MaxMS           float64   `json:"max_ms"`
	SubmitP50MS     float64   `json:"submit_p50_ms"`
	Restart         string    `json:"restart"`
	Contracts       int       `json:"restart_contracts"`
	GridReadyMS     float64   `json:"restart_grid_ready_ms"`
	BackFromKillMS  float64   `json:"restart_back_from_kill_ms"`
	BackFromReadyMS float64   `json:"restart_back_from_grid_ready_ms"`
	BlockInterval   string    `json:"block_interval"`
}

func main() {
	n := flag.Int("deployments", 20, "deployments to time after the warm-up one")
	out := flag.String("o", "text", "output: text or json")
	ledgerAddr := flag.String("ledger-addr", "127.0.0.1:26757", "ledger RPC address for the grid")
	hubAddr := flag.String("hub-addr", "127.0.0.1:5100", "hub address for the grid")
	keep := flag.Bool("keep", false, "keep the grid directory")
	flag.Parse()
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	r, err := run(ctx, *n, *ledgerAddr, *hubAddr, *keep)
	if err != nil {
		fmt.Fprintln(os.Stderr, "bench/node:", err)
		os.Exit(1)
	}
	if *out == "json" {
		b, _ := json.MarshalIndent(r, "", "  ")
		fmt.Println(string(b))
		return
	}
	fmt.Printf("deploy-to-Ready, %d deployments (%s), image cached:\n", r.Deployments, r.Mode)
	fmt.Printf("  p50 %.0f ms  p99 %.0f ms  max %.0f ms  (submit to inclusion p50 %.0f ms; warm-up deployment %.0f ms)\n",
		r.P50MS, r.P99MS, r.MaxMS, r.SubmitP50MS, r.WarmupMS)
	fmt.Printf("restart (%s), %d contracts:\n", r.Restart, r.Contracts)
	fmt.Printf("  grid ready %.0f ms after the kill; all back to Ready %.0f ms after the kill (%.0f ms after grid ready)\n",
		r.GridReadyMS, r.BackFromKillMS, r.BackFromReadyMS)
}

// gridRun is one grid.Run in a goroutine.
type gridRun struct {
	cancel context.CancelFunc
	done   chan error
	ready  chan struct{}
}

type readyWriter struct {
	once  sync.Once
	ready chan struct{}
}

func (w *readyWriter) Write(p []byte) (int, error) {
	if strings.Contains(string(p), "grid ready") {
		w.once.Do(func() { close(w.ready) })
	}
	return len(p), nil
}

func startGrid(ctx context.Context, cfg grid.Config) (*gridRun, error) {
	gctx, cancel := context.WithCancel(ctx)
	g := &gridRun{cancel: cancel, done: make(chan error, 1), ready: make(chan struct{})}
	cfg.Stdout = &readyWriter{ready: g.ready}
	go func() { g.done <- grid.Run(gctx, cfg) }()
	select {
	case <-g.ready:
		return g, nil
	case err := <-g.done:
		cancel()
		return nil, fmt.Errorf("grid: %w", err)
	case <-ctx.Done():
		cancel()
		<-g.done
		return nil, ctx.Err()
	}
}

func (g *gridRun) stop() error {
	g.cancel()
	return <-g.done
}

func run(ctx context.Context, n int, ledgerAddr, hubAddr string, keep bool) (*report, error) {
	dir, err := os.MkdirTemp("", "bench-node-")
	if err != nil {
		return nil, err
	}
	if keep {
		fmt.Fprintln(os.Stderr, "grid directory:", dir)
	} else {
		defer os.RemoveAll(dir)
	}
	cfg := grid.Config{Dir: dir, Nodes: 1, LedgerAddr: ledgerAddr, HubAddr: hubAddr, Namespaces: os.Geteuid() == 0}
	fmt.Fprintln(os.Stderr, "starting a grid with 1 node in", dir)
	g, err := startGrid(ctx, cfg)
	if err != nil {
		return nil, err
	}
	defer func() {
		if g != nil {
			_ = g.stop()
		}
	}()
	f, err := grid.Load(filepath.Join(dir, "grid.json"))
	if err != nil {
		return nil, err
	}
	if f.Example == "" {
		return nil, errors.New("the grid built no example image")
	}
	pass, err := f.Passphrase()
	if err != nil {
		return nil, err
	}
	kf, err := identity.ReadKeyFile(f.UserKey, pass)
	if err != nil {
		return nil, err
	}
	c, err := client.Dial(ctx, f.Ledger, client.Options{})
	if err != nil {
		return nil, err
	}
	defer c.Close()
	raw, err := os.ReadFile(f.Example)
	if err != nil {
		return nil, err
	}
	doc, err := spec.ParseYAML(f.Example, shrink(raw))
	if err != nil {
		return nil, err
	}
	d := &deployer{c: c, s: c.Signer(kf.Key), key: kf.Key, doc: doc, node: f.Nodes[0].ID}
	if d.twin, err = c.TwinByKey(ctx, kf.Key.Public()); err != nil {
		return nil, err
	}
	r := &report{Deployments: n, Mode: "sequential", BlockInterval: "500ms (grid default)",
		Restart: "SIGKILL of the zgridd node process, then the whole grid restarted on the same directory"}

	fmt.Fprintln(os.Stderr, "warm-up deployment")
	id0, lat, _, err := d.deployReady(ctx)
	if err != nil {
		return nil, fmt.Errorf("warm-up: %w", err)
	}
	r.WarmupMS = ms(lat)
	ids := []uint64{id0}
	var subs []float64
	for i := 0; i < n; i++ {
		id, lat, sub, err := d.deployReady(ctx)
		if err != nil {
			return nil, fmt.Errorf("deployment %d: %w", i+1, err)
		}
		fmt.Fprintf(os.Stderr, "deployment %d (contract %d): %v\n", i+1, id, lat.Round(time.Millisecond))
		ids = append(ids, id)
		r.LatenciesMS = append(r.LatenciesMS, ms(lat))
		subs = append(subs, ms(sub))
	}
	r.P50MS, r.P99MS, r.MaxMS = pct(r.LatenciesMS, 50), pct(r.LatenciesMS, 99), pct(r.LatenciesMS, 100)
	r.SubmitP50MS = pct(subs, 50)

	// Restart.
	seq := map[uint64]uint64{}
	for _, id := range ids {
		con, err := c.Contract(ctx, id)
		if err != nil {
			return nil, err
		}
		seq[id] = con.EventSeq
	}
	r.Contracts = len(ids)
	pid, err := nodePID(filepath.Join(dir, "nodes", "node1", "data"))
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(os.Stderr, "killing zgridd node (pid %d)\n", pid)
	killed := time.Now()
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		return nil, err
	}
	err = <-g.done // Run returns on the node's exit, after its teardown
	g = nil
	fmt.Fprintf(os.Stderr, "first grid stopped after %v (%v)\n", time.Since(killed).Round(time.Millisecond), err)
	c.Close()
	if g, err = startGrid(ctx, cfg); err != nil {
		return nil, fmt.Errorf("restart: %w", err)
	}
	gridReady := time.Now()
	r.GridReadyMS = ms(gridReady.Sub(killed))
	c2, err := client.Dial(ctx, f.Ledger, client.Options{})
	if err != nil {
		return nil, err
	}
	defer c2.Close()
	wctx, cancel := context.WithTimeout(ctx, 5*time.Minute)
	defer cancel()
	pending := append([]uint64(nil), ids...)
	for len(pending) > 0 {
		var left []uint64
		for _, id := range pending {
			con, err := c2.Contract(wctx, id)
			if err != nil || con.State != ledger.StateReady || con.EventSeq <= seq[id] {
				left = append(left, id)
			}
		}
		pending = left
		if len(pending) == 0 {
			break
		}
		select {
		case <-wctx.Done():
			return nil, fmt.Errorf("restart: %d contracts not back to ready: %w", len(pending), wctx.Err())
		case <-time.After(poll):
		}
	}
	now := time.Now()
	r.BackFromKillMS, r.BackFromReadyMS = ms(now.Sub(killed)), ms(now.Sub(gridReady))
	fmt.Fprintln(os.Stderr, "all back; stopping the grid")
	return r, nil
}

// shrink lowers the example's cpu, memory and volume size so that many
// copies fit one node.
func shrink(b []byte) []byte {
	b = regexp.MustCompile(`(?m)^(\s*)cpu:.*$`).ReplaceAll(b, []byte("${1}cpu: 50m"))
	b = regexp.MustCompile(`(?m)^(\s*)memory:.*$`).ReplaceAll(b, []byte("${1}memory: 32MiB"))
	return regexp.MustCompile(`(?m)^(\s*)size:.*$`).ReplaceAll(b, []byte("${1}size: 32MiB"))
}

type deployer struct {
	c    *client.Client
	s    *client.Signer
	key  identity.PrivateKey
	doc  *spec.Document
	node uint64
	twin *ledger.Twin
}

// deployReady creates one contract and waits for it to be ready. It
// returns the contract, the time from submit to ready and the time from
// submit to inclusion.
func (d *deployer) deployReady(ctx context.Context) (uint64, time.Duration, time.Duration, error) {
	nonce := make([]byte, 16)
	if _, err := rand.Read(nonce); err != nil {
		return 0, 0, 0, err
	}
	n, err := d.c.Node(ctx, d.node)
	if err != nil {
		return 0, 0, 0, err
	}
	seal, err := n.Seal()
	if err != nil {
		return 0, 0, 0, err
	}
	raw, err := d.doc.Spec.Encode()
	if err != nil {
		return 0, 0, 0, err
	}
	chain := d.c.Chain()
	sealed, err := spec.SealSecrets(seal, spec.SecretsContext{Chain: chain, Twin: d.twin.ID, Node: d.node, Nonce: nonce, Generation: 1}, nil)
	if err != nil {
		return 0, 0, 0, err
	}
	dep := ledger.DeploymentFor(chain, d.twin.ID, d.node, nonce, 1, raw, sealed)
	sig, err := d.key.Sign(ledger.TagDeployment, ledger.TxVersion, dep)
	if err != nil {
		return 0, 0, 0, err
	}
	op := ledger.Op{ContractCreate: &ledger.ContractCreate{Node: d.node, Nonce: nonce, Spec: raw, Secrets: sealed,
		SpecSig: ledger.Sig{Key: d.key.Public(), Sig: sig}}}
	start := time.Now()
	res, err := d.s.Submit(ctx, op)
	if err != nil {
		return 0, 0, 0, err
	}
	if err := res.Err(); err != nil {
		return 0, 0, 0, err
	}
	included := time.Since(start)
	wctx, cancel := context.WithTimeout(ctx, 2*time.Minute)
	defer cancel()
	for {
		con, err := d.c.Contract(wctx, res.ID)
		if err == nil && con.State == ledger.StateReady {
			return res.ID, time.Since(start), included, nil
		}
		if err == nil && (con.State == ledger.StateFailed || con.State == ledger.StateCancelled || con.State == ledger.StateExpired) {
			return res.ID, 0, 0, fmt.Errorf("contract %d: %s: %s", res.ID, con.State, con.Reason)
		}
		select {
		case <-wctx.Done():
			state := ""
			if con != nil {
				state = con.State + " " + con.Reason
			}
			return res.ID, 0, 0, fmt.Errorf("contract %d not ready (%s): %w", res.ID, state, wctx.Err())
		case <-time.After(poll):
		}
	}
}

// nodePID finds the zgridd node process serving data dir.
func nodePID(data string) (int, error) {
	ents, err := os.ReadDir("/proc")
	if err != nil {
		return 0, err
	}
	for _, e := range ents {
		var pid int
		if _, err := fmt.Sscanf(e.Name(), "%d", &pid); err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(string(b), "\x00")
		if len(args) < 2 || filepath.Base(args[0]) != "zgridd" || args[1] != "node" {
			continue
		}
		for i, a := range args {
			if a == "--data" && i+1 < len(args) && args[i+1] == data {
				return pid, nil
			}
		}
	}
	return 0, fmt.Errorf("no zgridd node process for %s", data)
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// pct is the nearest-rank percentile p of v.
func pct(v []float64, p float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	k := int(p/100*float64(len(s))+0.999999) - 1
	if k < 0 {
		k = 0
	}
	if k >= len(s) {
		k = len(s) - 1
	}
	return s[k]
}
