package ledger

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/wire"
)

// Query paths. Values are canonical CBOR of the named type; a missing object
// answers with CodeNotFound. Queries read the last committed state.
const (
	QueryChain         = "/chain"              // ChainInfo
	QueryAccount       = "/account/"           // + zgpub1…|zgnode1… → Account
	QueryTwin          = "/twin/"              // + id → Twin
	QueryFarm          = "/farm/"              // + id → Farm
	QueryNode          = "/node/"              // + id → Node
	QueryContract      = "/contract/"          // + id → Contract
	QueryTwinContracts = "/contracts/by-twin/" // + id → ContractList (Data: ListRequest)
	QueryNodeContracts = "/contracts/by-node/" // + id → ContractList (Data: ListRequest)
	QueryName          = "/name/"              // + name → NameContract
	QueryNameServers   = "/name-servers/"      // + name → NameServers
	QueryNodes         = "/nodes"              // NodeList (Data: ListRequest)
)

// MaxListLimit caps one page of a list query.
const MaxListLimit = 200

// ChainInfo is the answer to QueryChain.
type ChainInfo struct {
	Chain  string `cbor:"chain" json:"chain_id"`
	Params Params `cbor:"params" json:"params"`
	Height int64  `cbor:"height" json:"height"`
}

// Account is the answer to QueryAccount: whose key it is and the account's
// next sequence number.
type Account struct {
	Twin    uint64 `cbor:"twin,omitempty" json:"twin,omitempty"`
	Node    uint64 `cbor:"node,omitempty" json:"node,omitempty"`
	Seq     uint64 `cbor:"seq,omitempty" json:"seq"`
	Revoked bool   `cbor:"revoked,omitempty" json:"revoked,omitempty"`
}

// ListRequest pages through a list: ids strictly after After, at most Limit.
type ListRequest struct {
	After uint64 `cbor:"after,omitempty"`
	Limit uint32 `cbor:"limit,omitempty"`
}

// ContractList is one page of contracts; More says another page follows.
type ContractList struct {
	Contracts []Contract `cbor:"contracts" json:"contracts"`
	More      bool       `cbor:"more,omitempty" json:"more"`
}

// Query answers read requests against committed state.
func (a *App) Query(_ context.Context, req *abci.QueryRequest) (*abci.QueryResponse, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	h := a.store.meta.Height
	if req.Height != 0 && req.Height != h {
		return queryErr(h, reject(CodeInvalid, "only the latest height (%d) can be queried", h)), nil
	}
	v, err := a.query(req.Path, req.Data)
	if err != nil {
		return queryErr(h, err), nil
	}
	b, err := wire.Marshal(v)
	if err != nil {
		return nil, err
	}
	return &abci.QueryResponse{Code: 0, Value: b, Height: h}, nil
}

func queryErr(h int64, err error) *abci.QueryResponse {
	return &abci.QueryResponse{Code: uint32(CodeOf(err)), Codespace: Codespace, Log: ReasonOf(err), Height: h}
}

func (a *App) query(path string, data []byte) (any, error) {
	st := a.store
	switch {
	case path == QueryNodes:
		return a.queryNodes(data)
	case path == QueryChain:
		return ChainInfo{Chain: a.chain, Params: a.params, Height: st.meta.Height}, nil
	case strings.HasPrefix(path, QueryAccount):
		return a.queryAccount(strings.TrimPrefix(path, QueryAccount))
	case strings.HasPrefix(path, QueryTwinContracts):
		return a.queryList(path, QueryTwinContracts, "by-twin/", data)
	case strings.HasPrefix(path, QueryNodeContracts):
		return a.queryList(path, QueryNodeContracts, "by-node/", data)
	case strings.HasPrefix(path, QueryNameServers):
		return a.queryNameServers(strings.TrimPrefix(path, QueryNameServers))
	case strings.HasPrefix(path, QueryName):
		var n NameContract
		return found(getObj(st, kName(strings.TrimPrefix(path, QueryName)), &n))(&n, "name is not claimed")
	}
	for _, q := range []struct {
		prefix string
		load   func(reader, uint64) (any, error)
	}{
		{QueryTwin, func(r reader, id uint64) (any, error) { return loadTwin(r, id) }},
		{QueryFarm, func(r reader, id uint64) (any, error) { return loadFarm(r, id) }},
		{QueryNode, func(r reader, id uint64) (any, error) { return loadNode(r, id) }},
		{QueryContract, func(r reader, id uint64) (any, error) { return loadContract(r, id) }},
	} {
		if strings.HasPrefix(path, q.prefix) {
			id, err := parseID(strings.TrimPrefix(path, q.prefix))
			if err != nil {
				return nil, err
			}
			return q.load(st, id)
		}
	}
	return nil, reject(CodeNotFound, "unknown query path %q", path)
}

func found(ok bool, err error) func(v any, msg string) (any, error) {
	return func(v any, msg string) (any, error) {
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, reject(CodeNotFound, "%s", msg)
		}
		return v, nil
	}
}

func parseID(s string) (uint64, error) {
	id, err := strconv.ParseUint(s, 10, 64)
	if err != nil || id == 0 {
		return 0, reject(CodeInvalid, "%q is not an id (a positive number)", s)
	}
	return id, nil
}

func (a *App) queryAccount(text string) (any, error) {
	k, err := identity.ParsePublicKey(text)
	if err != nil {
		if k, err = identity.ParseNodeKey(text); err != nil {
			return nil, reject(CodeInvalid, "%q is not a zgpub1… or zgnode1… key", text)
		}
	}
	var ref KeyRef
	ok, err := getObj(a.store, kKey(k), &ref)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, reject(CodeNotFound, "key %s belongs to no twin or node", text)
	}
	if ref.Node != 0 {
		n, err := loadNode(a.store, ref.Node)
		if err != nil {
			return nil, err
		}
		return Account{Node: n.ID, Seq: n.Seq}, nil
	}
	t, err := loadTwin(a.store, ref.Twin)
	if err != nil {
		return nil, err
	}
	return Account{Twin: t.ID, Seq: t.Seq, Revoked: !t.ActiveKey(k)}, nil
}

func (a *App) queryList(path, qprefix, kprefix string, data []byte) (any, error) {
	owner, err := parseID(strings.TrimPrefix(path, qprefix))
	if err != nil {
		return nil, err
	}
	out := ContractList{Contracts: []Contract{}}
	out.More, err = a.page(u64key(kprefix, owner), data, func(id uint64) error {
		c, err := loadContract(a.store, id)
		if err != nil {
			return err
		}
		out.Contracts = append(out.Contracts, *c)
		return nil
	})
	return out, err
}

// page calls add for the ids (the last 8 bytes of the keys) under prefix
// that a ListRequest in data selects, in order, and reports whether more
// follow.
func (a *App) page(prefix string, data []byte, add func(id uint64) error) (more bool, err error) {
	var req ListRequest
	if len(data) > 0 {
		if err := wire.Unmarshal(data, &req); err != nil {
			return false, reject(CodeMalformed, "list request: %v", err)
		}
	}
	if req.Limit == 0 || req.Limit > MaxListLimit {
		req.Limit = MaxListLimit
	}
	n := 0
	err = a.store.scan(prefix, u64key(prefix, req.After+1), func(key string, _ []byte) (bool, error) {
		if n == int(req.Limit) {
			more = true
			return false, nil
		}
		if err := add(beUint64(key[len(key)-8:])); err != nil {
			return false, fmt.Errorf("%w: list entry %x: %v", ErrCorruptState, key, err)
		}
		n++
		return true, nil
	})
	return more, err
}
