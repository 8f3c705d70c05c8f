package node

import (
	"context"
	"crypto/rand"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
	"github.com/zerogrid/zerogrid/internal/ledger/ledgertest"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/workload/network"
)

// recordingPeers is the PeerSetter seam: it keeps the latest peer set.
type recordingPeers struct {
	mu    sync.Mutex
	peers []OverlayPeer
	calls int
}

func (r *recordingPeers) SetPeers(_ context.Context, p []OverlayPeer) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.peers, r.calls = slices.Clone(p), r.calls+1
	return nil
}

func (r *recordingPeers) nodes() []uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	var ids []uint64
	for _, p := range r.peers {
		ids = append(ids, p.Node)
	}
	return ids
}

// Peers follow the ledger: nodes that announce an overlay key join, a node
// its farm removes is dropped within the follow interval, and nothing is
// re-applied while nothing changes.
func TestFollowOverlay(t *testing.T) {
	t.Parallel()
	_, c := ledgertest.Memory(t, nil)
	ctx := t.Context()
	log := slog.New(slog.DiscardHandler)
	farmer, _ := identity.GenerateKey(rand.Reader)
	fs := c.Signer(farmer)
	if _, err := fs.Submit(ctx, ledger.Op{TwinRegister: &ledger.TwinRegister{}}); err != nil {
		t.Fatal(err)
	}
	res, err := fs.Submit(ctx, ledger.Op{FarmCreate: &ledger.FarmCreate{Name: "f"}})
	if err != nil {
		t.Fatal(err)
	}
	var ids []uint64
	var keys []identity.PrivateKey
	for i := range 4 {
		k, _ := identity.GenerateKey(rand.Reader)
		keys = append(keys, k)
		ap, _ := ledger.NewFarmApproval(farmer, c.Chain(), res.ID, k.Public(), time.Now().Add(time.Hour).Unix())
		id, err := Register(ctx, c, k, res.ID, &ap, log)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		hb := &ledger.NodeHeartbeat{Types: spec.AllTypes, Capacity: spec.Resources{CPU: 1000, Memory: 1 << 30}, Version: "t"}
		if i < 3 { // the fourth is not on the overlay
			if hb.Overlay, err = OverlayAnnouncement(k, c.Chain(), netip.MustParseAddrPort("10.9.0."+string(rune('1'+i))+":51820")); err != nil {
				t.Fatal(err)
			}
		}
		if _, err := c.Signer(k).Submit(ctx, ledger.Op{NodeHeartbeat: hb}); err != nil {
			t.Fatal(err)
		}
	}
	// A user whose network "lan" has a member on node 2 (accepted) and one
	// on node 3 (not accepted yet); this node serves "lan" too.
	user, _ := identity.GenerateKey(rand.Reader)
	us := c.Signer(user)
	res, err = us.Submit(ctx, ledger.Op{TwinRegister: &ledger.TwinRegister{}})
	if err != nil {
		t.Fatal(err)
	}
	twin := res.ID
	lanSpec := networkSpec(t)
	onNode2 := createContract(t, c, user, twin, ids[1], lanSpec)
	createContract(t, c, user, twin, ids[2], lanSpec)
	if _, err := c.Signer(keys[1]).Submit(ctx, ledger.Op{ContractAccept: &ledger.ContractAccept{Contract: onNode2, Generation: 1}}); err != nil {
		t.Fatal(err)
	}
	lan, _ := network.Prefix(c.Chain(), twin, "lan")
	nets := fixedNetworks{{Owner: twin, Name: "lan", Net: lan}}
	rec := &recordingPeers{}
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		FollowOverlay(fctx, c, ids[0], nets, rec, 100*time.Millisecond, log)
	}()
	waitPeers(t, rec, []uint64{ids[1], ids[2]})
	rec.mu.Lock()
	p := rec.peers[0]
	rec.mu.Unlock()
	sub2, _ := network.NodeSubnet(lan, ids[1])
	if wg, _ := keys[1].OverlayPublicKey(); p.WGKey != wg || p.Endpoint.String() != "10.9.0.2:51820" || !slices.Equal(p.Networks, []netip.Prefix{sub2}) {
		t.Fatalf("peer %+v, want node 2 with its /64 %s of lan", p, sub2)
	}
	rec.mu.Lock()
	p3 := rec.peers[1]
	rec.mu.Unlock()
	if len(p3.Networks) != 0 {
		t.Fatalf("node 3 has not accepted its lan contract but its subnets are allowed: %v", p3.Networks)
	}
	time.Sleep(300 * time.Millisecond)
	rec.mu.Lock()
	calls := rec.calls
	rec.mu.Unlock()
	if calls != 1 {
		t.Fatalf("peers applied %d times with no change", calls)
	}
	if _, err := fs.Submit(ctx, ledger.Op{FarmRemoveNode: &ledger.FarmRemoveNode{Node: ids[2]}}); err != nil {
		t.Fatal(err)
	}
	waitPeers(t, rec, []uint64{ids[1]})
	cancel()
	<-done
}

func waitPeers(t *testing.T, rec *recordingPeers, want []uint64) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !slices.Equal(rec.nodes(), want) {
		if time.Now().After(deadline) {
			t.Fatalf("peers %v, want %v", rec.nodes(), want)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type fixedNetworks []HostedNetwork

func (f fixedNetworks) HostedNetworks() ([]HostedNetwork, error) { return f, nil }

// networkSpec is a container on network "lan".
func networkSpec(t *testing.T) []byte {
	web := spec.Workload{Name: "web", Type: spec.TypeContainer, Resources: spec.Resources{CPU: 10, Memory: 1 << 20}}
	lan := spec.Workload{Name: "lan", Type: spec.TypeNetwork}
	b, err := (&spec.Spec{Version: spec.Version, Workloads: []spec.Workload{web, lan}}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func createContract(t *testing.T, c *client.Client, user identity.PrivateKey, twin, node uint64, raw []byte) uint64 {
	t.Helper()
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	d := ledger.DeploymentFor(c.Chain(), twin, node, nonce, 1, raw, nil)
	sig, _ := user.Sign(ledger.TagDeployment, ledger.TxVersion, d)
	res, err := c.Signer(user).Submit(t.Context(), ledger.Op{ContractCreate: &ledger.ContractCreate{Node: node, Nonce: nonce, Spec: raw,
		SpecSig: ledger.Sig{Key: user.Public(), Sig: sig}}})
	if err != nil {
		t.Fatal(err)
	}
	return res.ID
}

// fakeLister serves fixed nodes and contracts.
type fakeLister struct {
	nodes     []ledger.Node
	contracts []ledger.Contract
}

func (f fakeLister) Nodes(context.Context) ([]ledger.Node, error) { return f.nodes, nil }
func (f fakeLister) ContractsByTwin(_ context.Context, twin uint64) ([]ledger.Contract, error) {
	var out []ledger.Contract
	for _, c := range f.contracts {
		if c.Owner == twin {
			out = append(out, c)
		}
	}
	return out, nil
}

// A node its farm removed is no member of any network, even while the
// contract that placed it there is live.
func TestRemovedNodeLeavesNetworks(t *testing.T) {
	t.Parallel()
	raw := networkSpec(t)
	l := fakeLister{
		nodes: []ledger.Node{{ID: 2}, {ID: 3, Removed: 40}},
		contracts: []ledger.Contract{
			{ID: 1, Owner: 7, Node: 2, State: ledger.StateReady, Spec: raw},
			{ID: 2, Owner: 7, Node: 3, State: ledger.StateReady, Spec: raw},
		},
	}
	hosted := []HostedNetwork{{Owner: 7, Name: "lan", Net: netip.MustParsePrefix("fd12:3456:789a::/48")}}
	members, err := networkMembers(t.Context(), l, hosted, removedNodes(l.nodes))
	if err != nil {
		t.Fatal(err)
	}
	if len(members[2]) != 1 || len(members[3]) != 0 {
		t.Fatalf("members = %v, want node 2 only", members)
	}
}
