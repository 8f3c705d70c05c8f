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

func queryNameServers(st view, name string) (any, error) {
	var nc NameContract
	found, err := getObj(st, kName(name), &nc)
	if err != nil {
		return nil, err
	}
	if !found {
		return nil, reject(CodeNotFound, "name %q is not claimed", name)
	}
	out := NameServers{Name: name, Owner: nc.Owner, Keys: append([]identity.PublicKey{}, nc.Keys...)}
	err = st.scan(u64key("by-twin/", nc.Owner), "", func(key string, _ []byte) (bool, error) {
		c, err := loadContract(st, beUint64(key[len(key)-8:]))
		if err != nil {
			return false, fmt.Errorf("list entry %x: %w", key, err)
		}
		if !liveStates[c.State] || !servesName(c.Spec, name) {
			return true, nil
		}
		n, err := loadNode(st, c.Node)
		if err != nil {
			return false, err
		}
		if n.Removed != 0 {
			return true, nil // a node its farm removed serves nothing
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

func queryNodes(st view, data []byte) (any, error) {
	out := NodeList{Nodes: []Node{}}
	var err error
	out.More, err = page(st, "node/", data, func(id uint64) error {
		n, err := loadNode(st, id)
		if err != nil {
			return err
		}
		out.Nodes = append(out.Nodes, *n)
		return nil
	})
	return out, err
}
