// Command release measures how long a new release of zgridd takes to reach
// every node of a local grid, and what each node downloads for it.
//
//	sudo go run ./bench/release [-nodes 3] [-rounds 3] [-every 10s] [-o json]
//
// It starts a grid (internal/grid, in this process, in a temporary
// directory, nodes in their own network namespaces, checking for releases
// every -every), waits for "grid ready", and then, -rounds times, publishes
// a new release (the grid's zgridd with a few bytes appended, which still
// runs), signed with the grid's release keys and pushed to its hub. Each
// round is timed from just before publishing (signing included) until the
// ledger shows every node reporting the new version (polled every 50 ms).
// Bytes: each node's network namespace's received bytes (all interfaces but
// lo) over the round, and over an idle window as long as the round right
// after it, for comparison (heartbeats, ledger reads, overlay).
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/zerogrid/zerogrid/internal/grid"
	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
	"github.com/zerogrid/zerogrid/internal/release"
)

type round struct {
	Version     string  `json:"version"`
	Seconds     float64 `json:"publish_to_all_nodes_s"`
	PublishSecs float64 `json:"publish_and_push_s"`
	TargetBytes int64   `json:"target_bytes"`
	RxBytes     []int64 `json:"rx_bytes_per_node"`
	IdleRxBytes []int64 `json:"idle_rx_bytes_per_node"`
}

func main() {
	nodes := flag.Int("nodes", 3, "nodes in the grid")
	rounds := flag.Int("rounds", 3, "releases to publish")
	every := flag.Duration("every", 10*time.Second, "how often nodes check for a release (zgrid up's default is 10s)")
	out := flag.String("o", "text", "text or json")
	flag.Parse()
	if err := run(*nodes, *rounds, *every, *out); err != nil {
		fmt.Fprintln(os.Stderr, "bench/release:", err)
		os.Exit(1)
	}
}

type syncBuf struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func run(nodes, rounds int, every time.Duration, out string) error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("needs root: the grid's nodes run in network namespaces")
	}
	dir, err := os.MkdirTemp("", "zerogrid-bench-release-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer cancel()
	gctx, stop := context.WithCancel(ctx)
	var stdout syncBuf
	done := make(chan error, 1)
	go func() {
		done <- grid.Run(gctx, grid.Config{Dir: dir, Nodes: nodes, LedgerAddr: "127.0.0.1:0", HubAddr: "127.0.0.1:0",
			GatewayAddr: "127.0.0.1:0", Namespaces: true, ReleaseEvery: every, Stdout: &stdout})
	}()
	defer func() { stop(); <-done }()
	for !strings.Contains(stdout.String(), "grid ready") {
		select {
		case err := <-done:
			return fmt.Errorf("grid stopped: %v", err)
		case <-time.After(100 * time.Millisecond):
		}
	}
	gf, err := grid.Load(filepath.Join(dir, "grid.json"))
	if err != nil {
		return err
	}
	c, err := client.Dial(ctx, gf.Ledger, client.Options{TrustFile: gf.Trust})
	if err != nil {
		return err
	}
	defer c.Close()
	pass, err := gf.Passphrase()
	if err != nil {
		return err
	}
	signers := release.Signers{}
	for role, name := range map[string]string{release.RoleTargets: "targets", release.RoleSnapshot: "snapshot", release.RoleTimestamp: "timestamp"} {
		kf, err := identity.ReadKeyFile(filepath.Join(filepath.Dir(gf.Release), "keys", name+".key"), pass)
		if err != nil {
			return err
		}
		signers[role] = []identity.PrivateKey{kf.Key}
	}
	repo := &release.Repo{Dir: gf.Release}
	st, err := repo.Status()
	if err != nil {
		return err
	}
	base, err := os.ReadFile(filepath.Join(gf.Release, "targets", st.Targets[0].SHA256+"."+st.Targets[0].Name))
	if err != nil {
		return err
	}
	last, _ := strconv.Atoi(st.Targets[0].Version)
	var results []round
	for r := 1; r <= rounds; r++ {
		v := strconv.Itoa(last + r)
		bin := append(append([]byte{}, base...), fmt.Sprintf("\nbench release %s\n", v)...)
		before := rx(gf)
		t0 := time.Now()
		if err := repo.Publish(v, "", []release.File{{Name: release.TargetName(), Data: bin}}, signers); err != nil {
			return err
		}
		if _, err := release.Push(ctx, &http.Client{Timeout: 5 * time.Minute}, gf.Hub, gf.Release); err != nil {
			return err
		}
		pub := time.Since(t0)
		for _, n := range gf.Nodes {
			for {
				node, err := c.Node(ctx, n.ID)
				if err == nil && node.Version == v {
					break
				}
				if ctx.Err() != nil {
					return ctx.Err()
				}
				time.Sleep(50 * time.Millisecond)
			}
		}
		took := time.Since(t0)
		after := rx(gf)
		time.Sleep(took)
		idle := rx(gf)
		res := round{Version: v, Seconds: took.Seconds(), PublishSecs: pub.Seconds(), TargetBytes: int64(len(bin))}
		for i := range gf.Nodes {
			res.RxBytes = append(res.RxBytes, after[i]-before[i])
			res.IdleRxBytes = append(res.IdleRxBytes, idle[i]-after[i])
		}
		results = append(results, res)
		fmt.Fprintf(os.Stderr, "release %s: all %d nodes in %.2fs\n", v, len(gf.Nodes), took.Seconds())
	}
	if out == "json" {
		enc := json.NewEncoder(os.Stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(results)
	}
	secs := make([]float64, len(results))
	for i, r := range results {
		secs[i] = r.Seconds
		fmt.Printf("release %s: publish+push %.2fs, all nodes running it after %.2fs; target %d bytes; rx per node %v (idle window %v)\n",
			r.Version, r.PublishSecs, r.Seconds, r.TargetBytes, r.RxBytes, r.IdleRxBytes)
	}
	sort.Float64s(secs)
	fmt.Printf("median publish → all %d nodes: %.2fs (check every %s)\n", len(gf.Nodes), secs[len(secs)/2], every)
	return nil
}

// rx is each node namespace's received bytes, all interfaces but lo.
func rx(gf *grid.File) []int64 {
	out := make([]int64, len(gf.Nodes))
	for i, n := range gf.Nodes {
		b, err := exec.Command("ip", "-n", n.Namespace, "-j", "-s", "link").Output()
		if err != nil {
			continue
		}
		var links []struct {
			Ifname string `json:"ifname"`
			Stats  struct {
				Rx struct {
					Bytes int64 `json:"bytes"`
				} `json:"rx"`
			} `json:"stats64"`
		}
		if json.Unmarshal(b, &links) != nil {
			continue
		}
		for _, l := range links {
			if l.Ifname != "lo" {
				out[i] += l.Stats.Rx.Bytes
			}
		}
	}
	return out
}
