package clustertest

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/zerogrid/zerogrid/internal/ledger/client"
)

// blockInterval is the testnet's target time between blocks: short, so the
// test is quick, yet several times a consensus round on one host.
const blockInterval = 200 * time.Millisecond

// TestFourValidatorsSurviveOneDown runs four validators, kills one, and
// checks that the other three (2f+1 of 3f+1 with f=1) keep committing,
// and that the killed one, restarted on its home, catches up to the same
// application state, including what was written while it was down.
func TestFourValidatorsSurviveOneDown(t *testing.T) {
	began := time.Now()
	c := startCluster(t, 4)
	t.Cleanup(func() {
		t.Logf("mode %s, wall time %v", c.net.mode, time.Since(began).Round(time.Millisecond))
	})
	all, live := c.clientsOf(0, 1, 2, 3), c.clientsOf(0, 1, 2)
	waitHeight(t, all, 3)

	// All four up: a client of validator 0 that checks every header with
	// the other three as witnesses reads what the chain says.
	witnessed := dialWitnessed(t, c, 0)
	if st, err := witnessed.Status(t.Context()); err != nil || !st.Verified || len(st.Validators) != 4 {
		t.Fatalf("status checked against witnesses: %+v %v", st, err)
	}

	// All four up: writes through validator 0 reach everyone.
	w := newWritten()
	alice := c.clients[0].Signer(newKey(t))
	aliceTwin := w.registerTwin(t, alice)
	w.claimName(t, alice, aliceTwin, "alpha")
	w.requireVisible(t, all)

	// Validator 3 down: the other three still commit, without it.
	addr3 := c.validatorAddress(t, 3)
	c.vals[3].kill(t)
	c.requireDown(t, 3)
	downAt := maxHeight(t, live)
	bob := c.clients[0].Signer(newKey(t))
	bobTwin := w.registerTwin(t, bob)
	w.claimName(t, bob, bobTwin, "bravo")
	w.claimName(t, bob, bobTwin, "charlie")
	w.claimName(t, alice, aliceTwin, "delta")
	w.requireVisible(t, live)
	requireSignedWithout(t, c.clients[0], addr3, downAt+2, w.top)
	target := maxHeight(t, live)
	t.Logf("validator 3 down from height %d; writes committed up to %d; the others reached %d", downAt, w.top, target)

	// Validator 3 back on the same home: it catches up and agrees.
	c.restart(t, 3)
	all = c.clientsOf(0, 1, 2, 3)
	waitHeight(t, all, target+1)
	requireSameAppHash(t, all, target)
	w.requireVisible(t, c.clientsOf(3))

	c.stopAll(t)
}

// cluster is a testnet of zgridd processes and a client for each.
type cluster struct {
	net     *network
	vals    []*validator
	clients []*client.Client
	root    client.TrustRoot // what every client verifies from
}

// startCluster builds zgridd, writes an n-validator testnet, starts every
// validator and dials its RPC. Cleanups registered on the way stop the
// processes before the network under them is removed.
func startCluster(t *testing.T, n int) *cluster {
	t.Helper()
	dir := t.TempDir()
	bin := buildZgridd(t)
	c := &cluster{net: newNetwork(t, n)}
	homes := writeTestnet(t, bin, c.net, n, filepath.Join(dir, "testnet"))
	for i, home := range homes {
		argv := c.net.command(i, bin, "chain", "--home", home, "--log-level", "warn")
		c.vals = append(c.vals, newValidator(t, fmt.Sprintf("node%d", i), argv, dir))
	}
	for _, v := range c.vals {
		v.launch(t)
	}
	for i, v := range c.vals {
		v.awaitReady(t)
		if err := c.net.checkRPC(i, v.url); err != nil {
			t.Fatalf("%s: %v", v.name, err)
		}
	}
	// Every validator writes the chain's trust root (block 1, from its own
	// store) into its home; they must agree, and clients verify from it.
	for i, home := range homes {
		var r client.TrustRoot
		poll(t, c.vals[i].name+" writes trust.json", func(context.Context) error {
			var err error
			r, err = client.ReadTrustFile(filepath.Join(home, "trust.json"))
			return err
		})
		if i == 0 {
			c.root = r
		} else if r.Chain != c.root.Chain || r.Height != c.root.Height || !bytes.Equal(r.Hash, c.root.Hash) {
			t.Fatalf("%s's trust root %+v differs from node0's %+v", c.vals[i].name, r, c.root)
		}
	}
	for _, v := range c.vals {
		c.clients = append(c.clients, dial(t, v.name, v.url, c.root))
	}
	return c
}

// writeTestnet runs `zgridd chain testnet` and returns the homes it wrote.
func writeTestnet(t *testing.T, bin string, nw *network, n int, out string) []string {
	t.Helper()
	args := append([]string{"chain", "testnet", "--validators", strconv.Itoa(n),
		"--out", out, "--block-interval", blockInterval.String()}, nw.testnetArgs()...)
	cmd := exec.Command(bin, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	stdout, err := cmd.Output()
	if err != nil {
		t.Fatalf("zgridd %s: %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	homes := strings.Fields(string(stdout))
	if len(homes) != n {
		t.Fatalf("zgridd chain testnet listed %d homes, want %d:\n%s", len(homes), n, stdout)
	}
	return homes
}

// clientsOf names the clients of the given validators.
func (c *cluster) clientsOf(idx ...int) map[string]*client.Client {
	m := make(map[string]*client.Client, len(idx))
	for _, i := range idx {
		m[c.vals[i].name] = c.clients[i]
	}
	return m
}

// validatorAddress is validator i's consensus address, checked to be in
// the validator set so that looking for it in commits means something.
func (c *cluster) validatorAddress(t *testing.T, i int) []byte {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	defer cancel()
	st, err := rpcOf(c.clients[i]).Status(ctx)
	if err != nil {
		t.Fatalf("%s: %v", c.vals[i].name, err)
	}
	addr := st.ValidatorInfo.Address
	perPage := 100
	vals, err := rpcOf(c.clients[0]).Validators(ctx, nil, nil, &perPage)
	if err != nil {
		t.Fatalf("%s: validators: %v", c.vals[0].name, err)
	}
	for _, v := range vals.Validators {
		if bytes.Equal(v.Address, addr) && v.VotingPower > 0 {
			return addr
		}
	}
	t.Fatalf("%s's address %X is not in the validator set", c.vals[i].name, addr)
	return nil
}

// dialWitnessed dials validator i with every other validator as a witness
// of the headers it verifies.
func dialWitnessed(t *testing.T, c *cluster, i int) *client.Client {
	t.Helper()
	var others []string
	for j, v := range c.vals {
		if j != i {
			others = append(others, v.url)
		}
	}
	root := c.root
	wc, err := client.Dial(t.Context(), c.vals[i].url, client.Options{CommitTimeout: commitTimeout, TrustRoot: &root, Witnesses: others})
	if err != nil {
		t.Fatalf("dial %s with witnesses: %v", c.vals[i].name, err)
	}
	t.Cleanup(wc.Close)
	if _, err := wc.ChainInfo(t.Context()); err != nil {
		t.Fatalf("read through %s with witnesses: %v", c.vals[i].name, err)
	}
	return wc
}

// requireDown checks that validator i's RPC no longer answers.
func (c *cluster) requireDown(t *testing.T, i int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
	defer cancel()
	if _, err := height(ctx, c.clients[i]); err == nil {
		t.Fatalf("%s still answers at %s after it was killed", c.vals[i].name, c.vals[i].url)
	}
}

// restart starts validator i again on its home and dials it anew.
func (c *cluster) restart(t *testing.T, i int) {
	t.Helper()
	v := c.vals[i]
	v.start(t)
	c.clients[i] = dial(t, v.name, v.url, c.root)
}

// stopAll sends SIGTERM to every running validator at once and requires
// each to exit cleanly.
func (c *cluster) stopAll(t *testing.T) {
	t.Helper()
	var wg sync.WaitGroup
	for _, v := range c.vals {
		if v.running() {
			wg.Go(func() { v.stop(t) })
		}
	}
	wg.Wait()
}

// requireSignedWithout checks that blocks from..to were committed with at
// least three precommits and none from the validator at addr: the network
// made progress without it.
func requireSignedWithout(t *testing.T, c *client.Client, addr []byte, from, to int64) {
	t.Helper()
	if from > to {
		t.Fatalf("no blocks to check: heights %d..%d", from, to)
	}
	for h := from; h <= to; h++ {
		ctx, cancel := context.WithTimeout(t.Context(), callTimeout)
		res, err := rpcOf(c).Commit(ctx, &h)
		cancel()
		if err != nil {
			t.Fatalf("commit %d: %v", h, err)
		}
		signed := 0
		for _, sig := range res.Commit.Signatures {
			if sig.BlockIDFlag != cmttypes.BlockIDFlagCommit {
				continue
			}
			if bytes.Equal(sig.ValidatorAddress, addr) {
				t.Fatalf("block %d carries a precommit of the killed validator %X", h, addr)
			}
			signed++
		}
		if signed < 3 {
			t.Fatalf("block %d committed with %d precommits, want at least 3 of 4", h, signed)
		}
	}
}
