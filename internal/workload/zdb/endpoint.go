package zdb

import (
	"errors"
	"fmt"
	"net/netip"

	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/overlay"
	"github.com/zerogrid/zerogrid/internal/spec"
)

// Endpoint is where a zdb workload is served and what it is called there.
type Endpoint struct {
	Contract  uint64 `json:"contract"`
	Name      string `json:"name"`      // the workload
	Address   string `json:"address"`   // [overlay address]:port of its node
	Namespace string `json:"namespace"` // NamespaceName(contract, name)
}

// ErrNoOverlay: the contract's node announces no overlay key, so its zdb
// workloads have no address.
var ErrNoOverlay = errors.New("the node is not on the overlay")

// NodeAddr is the address zdb workloads of node n are served at: its
// overlay address (from the key it announced on chain) and DefaultPort.
func NodeAddr(chain string, n *ledger.Node) (netip.AddrPort, error) {
	if n == nil || n.Overlay == nil || len(n.Overlay.Key) != 32 {
		return netip.AddrPort{}, ErrNoOverlay
	}
	prefix, err := overlay.Prefix(chain)
	if err != nil {
		return netip.AddrPort{}, err
	}
	addr, err := overlay.Addr(prefix, overlay.Key(n.Overlay.Key))
	if err != nil {
		return netip.AddrPort{}, err
	}
	return netip.AddrPortFrom(addr, DefaultPort), nil
}

// Endpoints lists the zdb workloads of contract con (whose node is n)
// with their addresses, in the spec's order.
func Endpoints(chain string, con *ledger.Contract, n *ledger.Node) ([]Endpoint, error) {
	s, err := spec.Decode(con.Spec)
	if err != nil {
		return nil, fmt.Errorf("contract %d: %w", con.ID, err)
	}
	var out []Endpoint
	var ap netip.AddrPort
	for _, w := range s.Workloads {
		if w.Type != spec.TypeZDB {
			continue
		}
		if !ap.IsValid() {
			if ap, err = NodeAddr(chain, n); err != nil {
				return nil, fmt.Errorf("contract %d: node %d: %w", con.ID, con.Node, err)
			}
		}
		out = append(out, Endpoint{Contract: con.ID, Name: w.Name, Address: ap.String(), Namespace: NamespaceName(con.ID, w.Name)})
	}
	return out, nil
}
