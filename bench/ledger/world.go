package main

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
	"github.com/zerogrid/zerogrid/internal/spec"
)

// nonceBytes is the length of each contract's client nonce (8..64 allowed).
const nonceBytes = 16

// huge is a node capacity no benchmark run can fill.
var huge = spec.Resources{CPU: 1 << 50, Memory: 1 << 60, Disk: 1 << 60}

// world is what the load needs on chain: owners with twins and one node.
type world struct {
	chain  string
	owners []owner
	node   uint64
	spec   []byte
}

// owner is one signer of the load. signer is nil until bindSigners.
type owner struct {
	key    identity.PrivateKey
	signer *client.Signer
	twin   uint64
}

// setupWorld registers k owner twins, a farmer twin with a farm, and a node
// of that farm with a heartbeat reporting huge capacity. It submits through
// c (Signer.Submit); close c afterwards to stop its commit tracker, which
// would otherwise keep fetching every block during the load.
func setupWorld(ctx context.Context, c *client.Client, k int) (*world, error) {
	raw, err := benchSpec()
	if err != nil {
		return nil, err
	}
	keys, err := newKeys(k + 2)
	if err != nil {
		return nil, err
	}
	all := make([]owner, k+1) // the k owners, then the farmer
	for i := range all {
		all[i] = owner{key: keys[i], signer: c.Signer(keys[i])}
	}
	if err := registerTwins(ctx, all); err != nil {
		return nil, err
	}
	w := &world{chain: c.Chain(), spec: raw, owners: all[:k]}
	farmer, nodeKey := all[k], keys[k+1]
	if w.node, err = registerNode(ctx, c, farmer, nodeKey); err != nil {
		return nil, err
	}
	return w, nil
}

func newKeys(n int) ([]identity.PrivateKey, error) {
	keys := make([]identity.PrivateKey, n)
	for i := range keys {
		k, err := identity.GenerateKey(rand.Reader)
		if err != nil {
			return nil, err
		}
		keys[i] = k
	}
	return keys, nil
}

// registerTwins registers every owner concurrently and records its twin id.
func registerTwins(ctx context.Context, owners []owner) error {
	errs := make([]error, len(owners))
	var wg sync.WaitGroup
	for i := range owners {
		wg.Go(func() {
			res, err := owners[i].signer.Submit(ctx, ledger.Op{TwinRegister: &ledger.TwinRegister{}})
			if err != nil {
				errs[i] = fmt.Errorf("register twin %d of %d: %w", i+1, len(owners), err)
				return
			}
			owners[i].twin = res.ID
		})
	}
	wg.Wait()
	return errors.Join(errs...)
}

// registerNode creates the farm, registers nodeKey in it with the farmer's
// approval and sends its heartbeat. It returns the node id.
func registerNode(ctx context.Context, c *client.Client, farmer owner, nodeKey identity.PrivateKey) (uint64, error) {
	res, err := farmer.signer.Submit(ctx, ledger.Op{FarmCreate: &ledger.FarmCreate{Name: "bench"}})
	if err != nil {
		return 0, fmt.Errorf("create farm: %w", err)
	}
	farm := res.ID
	body := ledger.FarmApprovalBody{Chain: c.Chain(), Farm: farm, Node: nodeKey.Public(), Expires: time.Now().Add(time.Hour).Unix()}
	sig, err := farmer.key.Sign(ledger.TagFarmApprove, ledger.TxVersion, body)
	if err != nil {
		return 0, err
	}
	seal, err := nodeKey.SealKey()
	if err != nil {
		return 0, err
	}
	ns := c.Signer(nodeKey)
	res, err = ns.Submit(ctx, ledger.Op{NodeRegister: &ledger.NodeRegister{
		Farm: farm, SealKey: seal.Public(),
		Approval: ledger.FarmApproval{Body: body, Key: farmer.key.Public(), Sig: sig},
	}})
	if err != nil {
		return 0, fmt.Errorf("register node: %w", err)
	}
	node := res.ID
	if _, err := ns.Submit(ctx, ledger.Op{NodeHeartbeat: &ledger.NodeHeartbeat{Types: spec.AllTypes, Capacity: huge, Version: "bench"}}); err != nil {
		return 0, fmt.Errorf("node heartbeat: %w", err)
	}
	return node, nil
}

// benchSpec is a small two-workload spec, like a container with a volume.
func benchSpec() ([]byte, error) {
	s := &spec.Spec{Version: spec.Version, Workloads: []spec.Workload{
		{Name: "web", Type: spec.TypeContainer, Resources: spec.Resources{CPU: 100, Memory: 64 << 20}},
		{Name: "data", Type: spec.TypeVolume, Resources: spec.Resources{Disk: 1 << 20}},
	}}
	return s.Encode()
}

// createOp builds a ContractCreate for o with a fresh nonce and o's
// signature over the deployment.
func (w *world) createOp(o owner) (ledger.Op, error) {
	nonce := make([]byte, nonceBytes)
	if _, err := rand.Read(nonce); err != nil {
		return ledger.Op{}, err
	}
	d := ledger.DeploymentFor(w.chain, o.twin, w.node, nonce, 1, w.spec, nil)
	sig, err := o.key.Sign(ledger.TagDeployment, ledger.TxVersion, d)
	if err != nil {
		return ledger.Op{}, err
	}
	return ledger.Op{ContractCreate: &ledger.ContractCreate{
		Node: w.node, Nonce: nonce, Spec: w.spec,
		SpecSig: ledger.Sig{Key: o.key.Public(), Sig: sig},
	}}, nil
}

// bindSigners gives every owner a Signer on c. Signing does not start c's
// commit tracker; each Signer reads its account's sequence on first use.
func (w *world) bindSigners(c *client.Client) {
	for i := range w.owners {
		w.owners[i].signer = c.Signer(w.owners[i].key)
	}
}

// signNext builds and signs o's next ContractCreate.
func (w *world) signNext(ctx context.Context, o owner) ([]byte, error) {
	op, err := w.createOp(o)
	if err != nil {
		return nil, err
	}
	return o.signer.Sign(ctx, op)
}
