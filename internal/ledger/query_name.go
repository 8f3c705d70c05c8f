package ledger

import (
	"fmt"
	"slices"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/spec"
)

// NameServers is the answer to QueryNameServers: the keys a gateway may
// accept a tunnel for the name from. They are the keys the owner
// authorized (NameAuthorize) and the keys of the nodes that accepted one
// of the owner's contracts whose spec has a gateway-name workload for it.
type NameServers struct {
	Name  string               `cbor:"name" json:"name"`
	Owner uint64               `cbor:"owner" json:"owner"`
	Keys  []identity.PublicKey `cbor:"keys" json:"keys"`
}

// liveStates are the contract states in which a node serves the contract.
var liveStates = map[string]bool{StateAccepted: true, StateReady: true, StateDegraded: true}

func (a *App) queryNameServers(name string) (any, error) {
	var nc NameContract
	found, err := getObj(a.store, kName(name), &nc)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, reject(CodeNotFound, "name %q is not claimed", name)
	}
	out := NameServers{Name: name, Owner: nc.Owner, Keys: append([]identity.PublicKey{}, nc.Keys...)}
	err = a.store.scan(u64key("by-twin/", nc.Owner), u64key("by-twin/", nc.Owner), func(key string, _ []byte) (bool, error) {
		c, err := loadContract(a.store, beUint64(key[len(key)-8:]))
		if err != nil {
			return false, fmt.Errorf("%w: list entry %x", ErrCorruptState, key)
		}
		if !liveStates[c.State] || !servesName(c.Spec, name) {
			return true, nil
		}
		n, err := loadNode(a.store, c.Node)
		if err != nil {
			return false, err
		}
		if !slices.Contains(out.Keys, n.Key) {
			out.Keys = append(out.Keys, n.Key)
		}
		return true, nil
	})
	return out, err
}

// servesName reports whether a stored spec has a gateway-name workload
// for name. Stored specs were checked when they were accepted.
func servesName(raw []byte, name string) bool {
	s, err := spec.Decode(raw)
	if err != nil {
		return false
	}
	names, err := s.GatewayNames()
	return err == nil && slices.Contains(names, name)
}

// NodeList is one page of nodes, in id order; More says another follows.
type NodeList struct {
	Nodes []Node `cbor:"nodes" json:"nodes"`
	More  bool   `cbor:"more,omitempty" json:"more"`
}

func (a *App) queryNodes(data []byte) (any, error) {
	out := NodeList{Nodes: []Node{}}
	var err error
	out.More, err = a.page("node/", data, func(id uint64) error {
		n, err := loadNode(a.store, id)
		if err != nil {
			return err
		}
		out.Nodes = append(out.Nodes, *n)
		return nil
	})
	return out, err
}
