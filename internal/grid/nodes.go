package grid

import (
	"context"
	"encoding/json"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/overlay"
	"github.com/zerogrid/zerogrid/internal/workload/idmap"
)

// Each node's pool of host ids for containers' user namespaces: node i
// has nodeIDPoolCount ranges from nodeIDPoolFirst + (i-1) pools on.
const (
	nodeIDPoolFirst = 0x70000000
	nodeIDPoolCount = 256
)

// startNodes runs the node agents, each (with namespaces) in its own
// network namespace.
func (g *grid) startNodes(ctx context.Context) error {
	bin := g.zgridd
	ledgerURL, registry := g.file.Ledger, hostPort(g.file.Hub)
	var err error
	if g.cfg.Namespaces {
		if ledgerURL, registry, err = g.startNetwork(ctx); err != nil {
			return err
		}
		g.file.Hub = "http://" + registry
	}
	for i := 1; i <= g.cfg.Nodes; i++ {
		if err := g.startNode(ctx, i, bin, ledgerURL, registry); err != nil {
			return err
		}
	}
	if err := g.startGateway(ctx, bin); err != nil {
		return err
	}
	return g.startPortal(ctx, bin)
}

// startNetwork makes the nodes' namespaces and links and forwards the
// gateway's ledger and hub ports to the in-process services. It returns
// the ledger URL and hub address the nodes use.
func (g *grid) startNetwork(ctx context.Context) (string, string, error) {
	g.net = newHostNet(g.cfg.Dir)
	g.undo = append(g.undo, func() { g.net.removeUnderlay(context.Background()) })
	if err := g.net.addUnderlay(ctx); err != nil {
		return "", "", err
	}
	for i := 1; i <= g.cfg.Nodes; i++ {
		g.undo = append(g.undo, func() { g.net.remove(context.Background(), i) })
		if err := g.net.add(ctx, i); err != nil {
			return "", "", err
		}
		if err := g.net.joinUnderlay(ctx, i); err != nil {
			return "", "", err
		}
	}
	gw := g.net.gateway().String()
	var addrs []string
	for _, to := range []string{hostPort(g.file.Ledger), hostPort(g.file.Hub)} {
		f, err := forward(gw+":"+port(to), to)
		if err != nil {
			return "", "", fmt.Errorf("forward %s to the nodes' namespaces: %w", to, err)
		}
		g.undo = append(g.undo, f.close)
		addrs = append(addrs, f.l.Addr().String())
	}
	g.log.Info("nodes get their own network namespaces", "prefix", g.net.prefix, "subnet", g.net.subnet, "gateway", gw)
	return "http://" + addrs[0], addrs[1], nil
}

func (g *grid) startNode(ctx context.Context, i int, bin, ledgerURL, registry string) error {
	dir := filepath.Join(g.cfg.Dir, "nodes", "node"+strconv.Itoa(i))
	p := &nodeProc{index: i, data: filepath.Join(dir, "data"), runDir: filepath.Join(dir, "run")}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	key := g.keys.nodes[i-1]
	ap, err := ledger.NewFarmApproval(g.keys.farmer.Key, g.client.Chain(), g.file.Farm, key.Public(), time.Now().Add(time.Hour).Unix())
	if err != nil {
		return err
	}
	b, _ := json.Marshal(ap)
	if err := os.WriteFile(g.keys.approval(i), b, 0o600); err != nil {
		return err
	}
	args := []string{"node", "--ledger", ledgerURL, "--key", g.keys.nodePath(i), "--farm", strconv.FormatUint(g.file.Farm, 10),
		"--data", p.data, "--approval", g.keys.approval(i), "--trust-root", g.trustRoot, "--run-dir", p.runDir,
		"--subnet", fmt.Sprintf("10.250.%d.0/24", i), "--heartbeat", g.cfg.Heartbeat.String(),
		// Nodes on one machine must not share host ids: 256 deployments' ranges each.
		"--id-pool", fmt.Sprintf("%#x:%d", nodeIDPoolFirst+uint64(i-1)*nodeIDPoolCount*idmap.Size, nodeIDPoolCount),
		// nodes run only the zgridd the grid signed, and follow its releases
		"--release-root", g.rel.root, "--hub", "http://" + registry, "--release-every", g.cfg.ReleaseEvery.String()}
	n := Node{}
	if g.cfg.Namespaces {
		p.netns = g.net.netns(i)
		n.Namespace, n.Address = p.netns, g.net.nodeAddr(i).String()
		args = append(args, "--insecure-registry", registry)
		if _, err := os.Stat("/dev/net/tun"); err == nil {
			args = append(args, "--overlay", netip.AddrPortFrom(g.net.underlayAddr(i), overlay.DefaultListenPort).String())
		} else {
			g.log.Warn("nodes stay off the overlay: no /dev/net/tun", "node", i)
		}
	}
	g.undo = append(g.undo, func() { g.log.Info("stopping node", "node", i); p.stop(g.log) })
	if err := p.start(ctx, bin, args, g.keys.pass, filepath.Join(dir, "node.log"), g.log); err != nil {
		return err
	}
	g.nodes = append(g.nodes, p)
	// The node registered through its own client: this one may still read
	// the state of a block or two before, so give it a moment.
	var acct *ledger.Account
	for deadline := time.Now().Add(10 * time.Second); ; {
		if acct, err = g.client.Account(ctx, key.Public()); (err == nil && acct.Node != 0) || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil || acct.Node == 0 {
		return fmt.Errorf("node %d said it was ready but is not registered (%v)", i, err)
	}
	n.ID = acct.Node
	g.file.Nodes = append(g.file.Nodes, n)
	return nil
}

// heartbeatWait bounds the wait for the nodes' first heartbeats.
const heartbeatWait = time.Minute

// waitHeartbeats waits until every node has reported since this Run began.
func (g *grid) waitHeartbeats(ctx context.Context) error {
	since := g.started.Unix() - 1
	ctx, cancel := context.WithTimeout(ctx, heartbeatWait)
	defer cancel()
	for _, n := range g.file.Nodes {
		for {
			nd, err := g.client.Node(ctx, n.ID)
			if err == nil && nd.LastHeartbeat > 0 && nd.LastHeartbeat >= since {
				break
			}
			select {
			case <-ctx.Done():
				return fmt.Errorf("node %d sent no heartbeat: %w (see its node.log under %s)", n.ID, ctx.Err(), filepath.Join(g.cfg.Dir, "nodes"))
			case <-time.After(200 * time.Millisecond):
			}
		}
	}
	return nil
}

// buildExample pushes the example image and writes its spec; without
// the source tree or the Go toolchain it says why and goes on.
func (g *grid) buildExample(ctx context.Context) {
	src, err := sourceTree()
	if err == nil {
		var out string
		gw := g.file.Gateway
		if gw != nil {
			if err := ensureName(ctx, g.client, g.keys.user.Key, g.userTwin, ExampleName); err != nil {
				g.log.Warn("the example will not be served through the gateway", "err", err)
				gw = nil
			}
		}
		out, err = example(ctx, src, g.file.Hub, g.cfg.Namespaces, g.file.Nodes[0].ID, gw, filepath.Join(g.cfg.Dir, "examples"))
		if err == nil {
			g.file.Example = out
			g.log.Info("example image pushed", "spec", out)
			return
		}
	}
	g.log.Warn("no example image: the grid runs without it", "err", err)
}
