package ledger

import (
	"bytes"
	"slices"
	"testing"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/spec"
)

// gatewaySpec is a container and a gateway-name workload serving name.
func gatewaySpec(t testing.TB, name string) []byte {
	t.Helper()
	web := spec.Workload{Name: "web", Type: spec.TypeContainer, Resources: spec.Resources{CPU: 100, Memory: 64 << 20}}
	if err := web.SetConfig(spec.ContainerConfig{Image: "hub.example/hello@sha256:" + string(bytes.Repeat([]byte("a"), 64)), Ports: []uint16{8080}}); err != nil {
		t.Fatal(err)
	}
	gw := spec.Workload{Name: "site", Type: spec.TypeGatewayName}
	gk := newKey(t).Public()
	if err := gw.SetConfig(spec.GatewayNameConfig{Name: name, Backend: "web", Port: 8080, Gateways: []spec.GatewayRef{{Address: "10.0.0.1:4443", Key: gk}}}); err != nil {
		t.Fatal(err)
	}
	b, err := (&spec.Spec{Version: spec.Version, Workloads: []spec.Workload{web, gw}}).Encode()
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (w *world) nameServers(name string) (NameServers, Code) {
	var ns NameServers
	code := w.query(QueryNameServers+name, &ns)
	return ns, code
}

// A gateway-name workload needs the owner to hold the name; the name's
// servers are the keys the owner authorized and the nodes that accepted a
// live contract serving it, and nothing else.
func TestNameServers(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultParams())
	bob := newKey(t)
	w.must(bob, Op{TwinRegister: &TwinRegister{}})
	raw := gatewaySpec(t, "shop")

	w.refused(w.do(w.user, w.createOp(w.user, w.twin, w.nodeID, raw)), CodeInvalid) // not claimed
	w.must(bob, Op{NameClaim: &NameClaim{Name: "shop"}})
	w.refused(w.do(w.user, w.createOp(w.user, w.twin, w.nodeID, raw)), CodeUnauthorized) // bob's
	w.must(bob, Op{NameRelease: &NameRelease{Name: "shop"}})
	w.must(w.user, Op{NameClaim: &NameClaim{Name: "shop"}})

	if _, code := w.nameServers("nope"); code != CodeNotFound {
		t.Fatalf("unclaimed name: %s", code)
	}
	if ns, _ := w.nameServers("shop"); len(ns.Keys) != 0 || ns.Owner != w.twin {
		t.Fatalf("fresh name has servers: %+v", ns)
	}
	id := w.must(w.user, w.createOp(w.user, w.twin, w.nodeID, raw))
	if ns, _ := w.nameServers("shop"); len(ns.Keys) != 0 {
		t.Fatalf("servers before the node accepted: %+v", ns)
	}
	w.must(w.node, Op{ContractAccept: &ContractAccept{Contract: id, Generation: 1}})
	if ns, _ := w.nameServers("shop"); !slices.Equal(ns.Keys, []identity.PublicKey{w.node.Public()}) {
		t.Fatalf("servers after accept = %v, want the node", ns.Keys)
	}

	laptop := newKey(t).Public()
	w.refused(w.do(bob, Op{NameAuthorize: &NameAuthorize{Name: "shop", Keys: []identity.PublicKey{laptop}}}), CodeUnauthorized)
	w.refused(w.do(w.user, Op{NameAuthorize: &NameAuthorize{Name: "shop", Keys: []identity.PublicKey{laptop, laptop}}}), CodeInvalid)
	w.refused(w.do(w.user, Op{NameAuthorize: &NameAuthorize{Name: "nope", Keys: []identity.PublicKey{laptop}}}), CodeNotFound)
	w.refused(w.do(w.node, Op{NameAuthorize: &NameAuthorize{Name: "shop"}}), CodeUnauthorized)
	w.must(w.user, Op{NameAuthorize: &NameAuthorize{Name: "shop", Keys: []identity.PublicKey{laptop}}})
	if ns, _ := w.nameServers("shop"); !slices.Equal(ns.Keys, []identity.PublicKey{laptop, w.node.Public()}) {
		t.Fatalf("servers = %v, want laptop and node", ns.Keys)
	}

	w.must(w.user, Op{ContractCancel: &ContractCancel{Contract: id}})
	if ns, _ := w.nameServers("shop"); !slices.Equal(ns.Keys, []identity.PublicKey{laptop}) {
		t.Fatalf("servers after cancel = %v, want only laptop", ns.Keys)
	}
	w.must(w.user, Op{NameRelease: &NameRelease{Name: "shop"}})
	w.must(bob, Op{NameClaim: &NameClaim{Name: "shop"}})
	if ns, _ := w.nameServers("shop"); len(ns.Keys) != 0 || ns.Owner == w.twin {
		t.Fatalf("a new owner inherited servers: %+v", ns)
	}
}

// Only the farm's owner removes a node; a removed node signs nothing more,
// leaves the overlay, takes no new contracts, and the node list says so.
func TestFarmRemoveNode(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultParams())
	key := [32]byte(bytes.Repeat([]byte{7}, 32))
	w.must(w.node, Op{NodeHeartbeat: &NodeHeartbeat{Types: spec.AllTypes, Capacity: spec.Resources{CPU: 2000, Memory: 1 << 30, Disk: 10 << 30}, Version: "t",
		Overlay: provenOverlay(t, key, w.node.Public(), "10.0.0.1:51820")}})
	w.refused(w.do(w.user, Op{FarmRemoveNode: &FarmRemoveNode{Node: w.nodeID}}), CodeUnauthorized)
	w.refused(w.do(w.node, Op{FarmRemoveNode: &FarmRemoveNode{Node: w.nodeID}}), CodeUnauthorized)
	w.must(w.farmer, Op{FarmRemoveNode: &FarmRemoveNode{Node: w.nodeID}})
	w.refused(w.do(w.farmer, Op{FarmRemoveNode: &FarmRemoveNode{Node: w.nodeID}}), CodeConflict)
	w.refused(w.do(w.node, Op{NodeHeartbeat: &NodeHeartbeat{Types: spec.AllTypes, Version: "t"}}), CodeUnauthorized)
	w.refused(w.do(w.user, w.createOp(w.user, w.twin, w.nodeID, testSpec(t, 100))), CodeInvalid)

	var list NodeList
	if code := w.query(QueryNodes, &list); code != 0 || len(list.Nodes) != 1 {
		t.Fatalf("node list: %s %+v", code, list)
	}
	if n := list.Nodes[0]; n.Removed == 0 || n.Overlay != nil {
		t.Fatalf("removed node still listed as live: %+v", n)
	}
	// Its overlay key is free for another node.
	other := newKey(t)
	w.registerNode(other, w.farmer, w.farm)
	w.must(other, Op{NodeHeartbeat: &NodeHeartbeat{Types: spec.AllTypes, Version: "t", Overlay: provenOverlay(t, key, other.Public(), "10.0.0.2:51820")}})
}

func TestNodeListPages(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultParams())
	for range 3 {
		w.registerNode(newKey(t), w.farmer, w.farm)
	}
	var page NodeList
	data := mustMarshal(t, ListRequest{After: 1, Limit: 2})
	if code := w.queryData(QueryNodes, data, &page); code != 0 || len(page.Nodes) != 2 || !page.More || page.Nodes[0].ID != 2 {
		t.Fatalf("page = %s %+v", code, page)
	}
}

// A node its farm removed serves no name any more, even while the
// contract it accepted is still live.
func TestRemovedNodeServesNoName(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultParams())
	w.must(w.user, Op{NameClaim: &NameClaim{Name: "shop"}})
	id := w.must(w.user, w.createOp(w.user, w.twin, w.nodeID, gatewaySpec(t, "shop")))
	w.must(w.node, Op{ContractAccept: &ContractAccept{Contract: id, Generation: 1}})
	if ns, _ := w.nameServers("shop"); !slices.Equal(ns.Keys, []identity.PublicKey{w.node.Public()}) {
		t.Fatalf("servers = %v, want the node", ns.Keys)
	}
	w.must(w.farmer, Op{FarmRemoveNode: &FarmRemoveNode{Node: w.nodeID}})
	if c := w.contract(id); !c.Live() {
		t.Fatalf("the contract itself should still be live: %s", c.State)
	}
	if ns, _ := w.nameServers("shop"); len(ns.Keys) != 0 {
		t.Fatalf("a removed node still serves the name: %v", ns.Keys)
	}
}

// A gateway's first announce registers its key; later ones move its
// address; nobody else's key, and no twin or node key, can announce it.
func TestGatewayAnnounce(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultParams())
	gw := newKey(t)
	id := w.must(gw, Op{GatewayAnnounce: &GatewayAnnounce{Address: "127.0.0.1:4443"}})
	var g Gateway
	if code := w.query(QueryGateway+gw.Public().String(), &g); code != 0 || g.ID != id || g.Address != "127.0.0.1:4443" || !g.Key.Equal(gw.Public()) {
		t.Fatalf("gateway = %s %+v", code, g)
	}
	var acct Account
	if code := w.query(QueryAccount+gw.Public().String(), &acct); code != 0 || acct.Gateway != id || acct.Seq != 1 {
		t.Fatalf("the gateway's account = %s %+v; its next sequence must be known to sign again", code, acct)
	}
	w.must(gw, Op{GatewayAnnounce: &GatewayAnnounce{Address: "gw.example.net:5443"}})
	if w.query(QueryGateway+gw.Public().String(), &g); g.Address != "gw.example.net:5443" || g.ID != id || g.Seq != 2 {
		t.Fatalf("after moving: %+v", g)
	}
	for _, bad := range []string{"", "nohost", "127.0.0.1:0", "[fe80::1%eth0]:1"} {
		w.refused(w.do(gw, Op{GatewayAnnounce: &GatewayAnnounce{Address: bad}}), CodeInvalid)
	}
	w.refused(w.do(w.user, Op{GatewayAnnounce: &GatewayAnnounce{Address: "127.0.0.1:1"}}), CodeUnauthorized)
	w.refused(w.do(w.node, Op{GatewayAnnounce: &GatewayAnnounce{Address: "127.0.0.1:1"}}), CodeUnauthorized)
	if code := w.query(QueryGateway+w.user.Public().String(), &g); code != CodeNotFound {
		t.Fatalf("a twin's key as a gateway: %s", code)
	}
	// A gateway key cannot then act as a twin.
	w.refused(w.do(gw, Op{NameClaim: &NameClaim{Name: "gwname"}}), CodeUnauthorized)
}
