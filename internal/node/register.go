package node

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
)

// ErrNeedApproval is returned when the node is not registered yet and no
// farm approval was given.
var ErrNeedApproval = errors.New("node: not registered yet and no farm approval given")

// Register makes sure this node's key is a node on the ledger, registering
// it in farm with the farm owner's approval the first time. It is
// idempotent: an already registered key just returns its node id.
func Register(ctx context.Context, c *client.Client, key identity.PrivateKey, farm uint64, approval *ledger.FarmApproval, log *slog.Logger) (uint64, error) {
	acct, err := c.Account(ctx, key.Public())
	switch {
	case err == nil && acct.Node != 0:
		n, err := c.Node(ctx, acct.Node)
		if err != nil {
			return 0, err
		}
		if n.Farm != farm {
			return 0, fmt.Errorf("node key %s is registered as node %d in farm %d, not farm %d", key.Public().NodeString(), n.ID, n.Farm, farm)
		}
		return n.ID, nil
	case err == nil:
		return 0, fmt.Errorf("key %s belongs to twin %d: a node needs its own key (zgrid key new --kind node)", key.Public(), acct.Twin)
	case !errors.Is(err, client.ErrNotFound):
		return 0, err
	}
	if approval == nil {
		return 0, fmt.Errorf("%w: ask the owner of farm %d for one (zgrid farm approve-node --farm %d --node %s --out FILE) and pass it with --approval FILE",
			ErrNeedApproval, farm, farm, key.Public().NodeString())
	}
	seal, err := key.SealKey()
	if err != nil {
		return 0, err
	}
	if _, err := c.Signer(key).Submit(ctx, ledger.Op{NodeRegister: &ledger.NodeRegister{Farm: farm, SealKey: seal.Public(), Approval: *approval}}); err != nil {
		return 0, fmt.Errorf("register node: %w", err)
	}
	// The node's id is what the state says its key is, read with a proof,
	// not what the commit notice said.
	acct, err = c.Account(ctx, key.Public())
	if err != nil || acct.Node == 0 {
		return 0, fmt.Errorf("read back the node's registration: %v", err)
	}
	log.Info("registered on the ledger", "node", acct.Node, "farm", farm, "key", key.Public().NodeString())
	return acct.Node, nil
}

// Heartbeat sends what report says about the node (capacity, version,
// overlay, the workload types it can run, its conditions) every interval
// until ctx ends. Failures are logged and retried at the next beat.
func Heartbeat(ctx context.Context, s *client.Signer, report func() (*ledger.NodeHeartbeat, error), every time.Duration, log *slog.Logger) {
	beat := func() {
		hb, err := report()
		if err != nil {
			log.Warn("heartbeat", "err", err)
			return
		}
		if _, err := s.Submit(ctx, ledger.Op{NodeHeartbeat: hb}); err != nil && ctx.Err() == nil {
			log.Warn("heartbeat", "err", err)
		}
	}
	beat()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			beat()
		}
	}
}
