package node

import (
	"bytes"
	"context"
	"crypto/rand"
	"errors"
	"log/slog"
	"net/netip"
	"slices"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/ledgertest"
	"github.com/zerogrid/zerogrid/internal/spec"
)

func TestRegisterAndHeartbeat(t *testing.T) {
	t.Parallel()
	_, c := ledgertest.Memory(t, nil)
	ctx := t.Context()
	log := slog.New(slog.DiscardHandler)
	farmer, _ := identity.GenerateKey(rand.Reader)
	nodeKey, _ := identity.GenerateKey(rand.Reader)
	fs := c.Signer(farmer)
	if _, err := fs.Submit(ctx, ledger.Op{TwinRegister: &ledger.TwinRegister{}}); err != nil {
		t.Fatal(err)
	}
	res, err := fs.Submit(ctx, ledger.Op{FarmCreate: &ledger.FarmCreate{Name: "f"}})
	if err != nil {
		t.Fatal(err)
	}
	farm := res.ID
	if _, err := Register(ctx, c, nodeKey, farm, nil, log); !errors.Is(err, ErrNeedApproval) {
		t.Fatalf("without approval: %v", err)
	}
	ap, err := ledger.NewFarmApproval(farmer, c.Chain(), farm, nodeKey.Public(), time.Now().Add(time.Hour).Unix())
	if err != nil {
		t.Fatal(err)
	}
	id, err := Register(ctx, c, nodeKey, farm, &ap, log)
	if err != nil || id == 0 {
		t.Fatalf("register: %d %v", id, err)
	}
	if again, err := Register(ctx, c, nodeKey, farm, nil, log); err != nil || again != id {
		t.Fatalf("second register: %d %v", again, err)
	}
	if _, err := Register(ctx, c, nodeKey, farm+1, nil, log); err == nil {
		t.Fatal("registered key accepted for another farm")
	}
	hctx, cancel := context.WithCancel(ctx)
	done := make(chan struct{})
	want := spec.Resources{CPU: 3000, Memory: 1 << 30, Disk: 1 << 32}
	ov, err := OverlayAnnouncement(nodeKey, c.Chain(), netip.MustParseAddrPort("10.1.2.3:51820"))
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		defer close(done)
		Heartbeat(hctx, c.Signer(nodeKey), func() (*ledger.NodeHeartbeat, error) {
			return &ledger.NodeHeartbeat{Capacity: want, Version: "v-test", Overlay: ov, Types: []string{spec.TypeVolume}}, nil
		}, 50*time.Millisecond, log)
	}()
	deadline := time.Now().Add(20 * time.Second)
	for {
		n, err := c.Node(ctx, id)
		if err == nil && n.Capacity == want && n.Version == "v-test" && n.LastHeartbeat != 0 && slices.Equal(n.Types, []string{spec.TypeVolume}) &&
			n.Overlay != nil && n.Overlay.Endpoint == ov.Endpoint && bytes.Equal(n.Overlay.Key, ov.Key) {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no heartbeat on the ledger: %+v %v", n, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	cancel()
	<-done
}

func TestMeasureCapacity(t *testing.T) {
	t.Parallel()
	c, err := MeasureCapacity(t.TempDir(), spec.Resources{Memory: 1 << 20})
	if err != nil || c.CPU < 1000 || c.Memory == 0 || c.Disk == 0 {
		t.Fatalf("capacity %+v %v", c, err)
	}
}
