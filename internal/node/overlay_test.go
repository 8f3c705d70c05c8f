package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"log/slog"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/ledgertest"
	"github.com/zerogrid/zerogrid/internal/spec"
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
	c := ledgertest.Start(t, nil)
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
	for i := range 4 {
		k, _ := identity.GenerateKey(rand.Reader)
		ap, _ := ledger.NewFarmApproval(farmer, c.Chain(), res.ID, k.Public(), time.Now().Add(time.Hour).Unix())
		id, err := Register(ctx, c, k, res.ID, &ap, log)
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, id)
		hb := &ledger.NodeHeartbeat{Capacity: spec.Resources{CPU: 1000}, Version: "t"}
		if i < 3 { // the fourth is not on the overlay
			hb.Overlay = &ledger.NodeOverlay{Key: bytes.Repeat([]byte{byte(i + 1)}, 32), Endpoint: "10.9.0." + string(rune('1'+i)) + ":51820"}
		}
		if _, err := c.Signer(k).Submit(ctx, ledger.Op{NodeHeartbeat: hb}); err != nil {
			t.Fatal(err)
		}
	}
	rec := &recordingPeers{}
	fctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() {
		defer close(done)
		FollowOverlay(fctx, c, ids[0], rec, 100*time.Millisecond, log)
	}()
	waitPeers(t, rec, []uint64{ids[1], ids[2]})
	rec.mu.Lock()
	p := rec.peers[0]
	rec.mu.Unlock()
	if p.WGKey != [32]byte(bytes.Repeat([]byte{2}, 32)) || p.Endpoint.String() != "10.9.0.2:51820" {
		t.Fatalf("peer %+v", p)
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
