package qsfs

import (
	"context"
	"fmt"
	"strconv"

	"go.yaml.in/yaml/v3"

	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/storage/catalog"
	"github.com/zerogrid/zerogrid/internal/workload"
	"github.com/zerogrid/zerogrid/internal/workload/zdb"
)

// Backend is a zdb workload as a store backend.
type Backend struct {
	ID        string // the namespace name: unique on the grid
	Address   string
	Namespace string
	Domain    string // "node<ID>": a node is a failure domain
}

// Ledger is what resolving backends reads from the ledger (a verifying
// client).
type Ledger interface {
	Contract(ctx context.Context, id uint64) (*ledger.Contract, error)
	Node(ctx context.Context, id uint64) (*ledger.Node, error)
}

// Resolver finds zdb workload ref of owner's contracts.
type Resolver func(ctx context.Context, owner uint64, ref spec.ZDBRef) (Backend, error)

// LedgerResolver resolves zdb workloads through l: the contract must be
// owner's and live, name a zdb workload ref.Workload, and run on a node
// on the overlay. A contract of another owner or without such a workload
// is a permanent error; one the ledger cannot answer for, retryable.
func LedgerResolver(l Ledger, chain string) Resolver {
	return func(ctx context.Context, owner uint64, ref spec.ZDBRef) (Backend, error) {
		con, err := l.Contract(ctx, ref.Contract)
		if err != nil {
			return Backend{}, workload.Retryable(err, "backend %s: read contract %d: %v", ref, ref.Contract, err)
		}
		if con.Owner != owner {
			return Backend{}, workload.Permanent(workload.ErrInvalid, "backend %s: contract %d is not yours: a qsfs uses only its owner's zdb workloads", ref, ref.Contract)
		}
		if !con.Live() {
			return Backend{}, workload.Permanent(workload.ErrInvalid, "backend %s: contract %d has ended (%s)", ref, ref.Contract, con.State)
		}
		s, err := spec.Decode(con.Spec)
		if err != nil {
			return Backend{}, workload.Permanent(workload.ErrInvalid, "backend %s: %v", ref, err)
		}
		found := false
		for _, w := range s.Workloads {
			found = found || (w.Name == ref.Workload && w.Type == spec.TypeZDB)
		}
		if !found {
			return Backend{}, workload.Permanent(workload.ErrInvalid, "backend %s: contract %d has no zdb workload %q (zgrid status %d lists them)", ref, ref.Contract, ref.Workload, ref.Contract)
		}
		n, err := l.Node(ctx, con.Node)
		if err != nil {
			return Backend{}, workload.Retryable(err, "backend %s: read node %d: %v", ref, con.Node, err)
		}
		ap, err := zdb.NodeAddr(chain, n)
		if err != nil {
			return Backend{}, workload.Retryable(err, "backend %s: node %d: %v", ref, con.Node, err)
		}
		ns := zdb.NamespaceName(ref.Contract, ref.Workload)
		return Backend{ID: ns, Address: ap.String(), Namespace: ns, Domain: "node" + strconv.FormatUint(con.Node, 10)}, nil
	}
}

// StoreConfig is the store configuration file of a store with k data and
// m parity shards over bs, whose namespaces open with password.
func StoreConfig(k, m int, bs []Backend, password string) ([]byte, error) {
	c := catalog.Config{K: k, M: m}
	for _, b := range bs {
		c.Backends = append(c.Backends, catalog.BackendConfig{ID: b.ID, Type: "zdb", Domain: b.Domain,
			Address: b.Address, Namespace: b.Namespace, Password: password})
	}
	out, err := yaml.Marshal(&c)
	if err != nil {
		return nil, err
	}
	if _, err := catalog.ParseConfig("qsfs store config", out); err != nil {
		return nil, fmt.Errorf("store config: %w", err)
	}
	return out, nil
}

// ContractBackends resolves every zdb workload of the given contracts, in
// order, as backends (what `zgrid store init --from-contracts` writes).
func ContractBackends(ctx context.Context, l Ledger, chain string, ids []uint64) ([]Backend, error) {
	resolve := LedgerResolver(l, chain)
	var out []Backend
	for _, id := range ids {
		con, err := l.Contract(ctx, id)
		if err != nil {
			return nil, fmt.Errorf("contract %d: %w", id, err)
		}
		s, err := spec.Decode(con.Spec)
		if err != nil {
			return nil, fmt.Errorf("contract %d: %w", id, err)
		}
		n := len(out)
		for _, w := range s.Workloads {
			if w.Type != spec.TypeZDB {
				continue
			}
			b, err := resolve(ctx, con.Owner, spec.ZDBRef{Contract: id, Workload: w.Name})
			if err != nil {
				return nil, err
			}
			out = append(out, b)
		}
		if len(out) == n {
			return nil, fmt.Errorf("contract %d has no zdb workloads", id)
		}
	}
	return out, nil
}
