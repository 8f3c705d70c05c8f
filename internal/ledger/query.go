package ledger

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	abci "github.com/cometbft/cometbft/abci/types"
	cmtcrypto "github.com/cometbft/cometbft/api/cometbft/crypto/v1"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger/trie"
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
	QueryGateway       = "/gateway/"           // + zgpub1… → Gateway
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
	Gateway uint64 `cbor:"gateway,omitempty" json:"gateway,omitempty"`
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

// ProofOpType names zerogrid's state proofs (trie.Proof bytes) in ABCI
// query answers.
const ProofOpType = "zerogrid/state/v1"

// Query answers read requests against the state committed at the latest
// height, or at req.Height while the validator still keeps it. With
// req.Prove the answer carries a proof of every state key and range the
// query read (for a refusal such as "not found" too) and no value: a
// client computes the value again from the proof (VerifyAnswer), so it
// trusts nothing the validator says beyond what the app hash commits to.
// Queries read immutable versions and do not hold up blocks.
func (a *App) Query(_ context.Context, req *abci.QueryRequest) (*abci.QueryResponse, error) {
	a.mu.Lock()
	latest := a.store.meta.Height
	h := latest
	if req.Height != 0 {
		h = req.Height
	}
	t, ok := a.store.at(h)
	a.mu.Unlock()
	if !ok {
		return queryErr(latest, reject(CodeInvalid, "height %d is not kept: this validator answers for its last %d heights, up to %d; ask without a height", h, a.store.keep, latest)), nil
	}
	v := &treeView{t: t}
	if req.Prove {
		v.reads = &trie.Reads{}
	}
	val, err := answer(v, h, req.Path, req.Data)
	var b []byte
	if err == nil && !req.Prove {
		if b, err = wire.Marshal(val); err != nil {
			return nil, err
		}
	}
	var rej *Rejection
	if err != nil && !errors.As(err, &rej) {
		return nil, err // corrupt state: stop rather than answer
	}
	res := queryErr(h, err)
	res.Value = b
	if req.Prove {
		res.ProofOps = &cmtcrypto.ProofOps{Ops: []cmtcrypto.ProofOp{{Type: ProofOpType, Data: t.Prove(*v.reads)}}}
	}
	return res, nil
}

func queryErr(h int64, err error) *abci.QueryResponse {
	if err == nil {
		return &abci.QueryResponse{Height: h}
	}
	return &abci.QueryResponse{Code: uint32(CodeOf(err)), Codespace: Codespace, Log: ReasonOf(err), Height: h}
}

// VerifyAnswer checks a proven query answer: the proof must decode and
// hash to appHash (the app hash of the state after block height, taken
// from a verified header), and the query, run again on the proof alone,
// must read nothing the proof does not cover. It returns the answer's
// canonical encoding, or the query's refusal (a *Rejection such as
// CodeNotFound: proven too), or an error wrapping ErrBadProof.
func VerifyAnswer(appHash []byte, height int64, path string, data []byte, proof []byte) ([]byte, error) {
	p, err := trie.DecodeProof(proof)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrBadProof, err)
	}
	if root := p.Root(); !bytes.Equal(root[:], appHash) {
		return nil, fmt.Errorf("%w: it hashes to %x, the verified app hash at height %d is %x", ErrBadProof, root[:8], height, appHash)
	}
	v, err := answer(proofView{p}, height, path, data)
	if err != nil {
		return nil, err
	}
	return wire.Marshal(v)
}

// answer runs the query path on a view of the state after block height.
func answer(st view, height int64, path string, data []byte) (any, error) {
	switch {
	case path == QueryNodes:
		return queryNodes(st, data)
	case path == QueryChain:
		return queryChain(st, height)
	case strings.HasPrefix(path, QueryAccount):
		return queryAccount(st, strings.TrimPrefix(path, QueryAccount))
	case strings.HasPrefix(path, QueryTwinContracts):
		return queryList(st, path, QueryTwinContracts, "by-twin/", data)
	case strings.HasPrefix(path, QueryNodeContracts):
		return queryList(st, path, QueryNodeContracts, "by-node/", data)
	case strings.HasPrefix(path, QueryNameServers):
		return queryNameServers(st, strings.TrimPrefix(path, QueryNameServers))
	case strings.HasPrefix(path, QueryGateway):
		return queryGateway(st, strings.TrimPrefix(path, QueryGateway))
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

func queryChain(st view, height int64) (any, error) {
	info := ChainInfo{Height: height}
	if _, err := getObj(st, kChain, &info.Chain); err != nil {
		return nil, err
	}
	if _, err := getObj(st, kParams, &info.Params); err != nil {
		return nil, err
	}
	return info, nil
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

func queryAccount(st view, text string) (any, error) {
	k, err := identity.ParsePublicKey(text)
	if err != nil {
		if k, err = identity.ParseNodeKey(text); err != nil {
			return nil, reject(CodeInvalid, "%q is not a zgpub1… or zgnode1… key", text)
		}
	}
	var ref KeyRef
	ok, err := getObj(st, kKey(k), &ref)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, reject(CodeNotFound, "key %s belongs to no twin or node", text)
	}
	if ref.Node != 0 {
		n, err := loadNode(st, ref.Node)
		if err != nil {
			return nil, err
		}
		return Account{Node: n.ID, Seq: n.Seq}, nil
	}
	if ref.Gateway != 0 {
		g, err := loadGateway(st, ref.Gateway)
		if err != nil {
			return nil, err
		}
		return Account{Gateway: g.ID, Seq: g.Seq}, nil
	}
	t, err := loadTwin(st, ref.Twin)
	if err != nil {
		return nil, err
	}
	return Account{Twin: t.ID, Seq: t.Seq, Revoked: !t.ActiveKey(k)}, nil
}

func queryGateway(st view, text string) (any, error) {
	k, err := identity.ParsePublicKey(text)
	if err != nil {
		return nil, reject(CodeInvalid, "%q is not a zgpub1… key", text)
	}
	var ref KeyRef
	ok, err := getObj(st, kKey(k), &ref)
	if err != nil {
		return nil, err
	}
	if !ok || ref.Gateway == 0 {
		return nil, reject(CodeNotFound, "key %s is not a gateway's: the gateway announces itself when it starts (zgridd gateway)", text)
	}
	return loadGateway(st, ref.Gateway)
}

func queryList(st view, path, qprefix, kprefix string, data []byte) (any, error) {
	owner, err := parseID(strings.TrimPrefix(path, qprefix))
	if err != nil {
		return nil, err
	}
	out := ContractList{Contracts: []Contract{}}
	out.More, err = page(st, u64key(kprefix, owner), data, func(id uint64) error {
		c, err := loadContract(st, id)
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
func page(st view, prefix string, data []byte, add func(id uint64) error) (more bool, err error) {
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
	err = st.scan(prefix, u64key(prefix, req.After+1), func(key string, _ []byte) (bool, error) {
		if n == int(req.Limit) {
			more = true
			return false, nil
		}
		if len(key) != len(prefix)+8 {
			return false, fmt.Errorf("%w: list entry %x", ErrCorruptState, key)
		}
		if err := add(beUint64(key[len(key)-8:])); err != nil {
			return false, fmt.Errorf("list entry %x: %w", key, err)
		}
		n++
		return true, nil
	})
	return more, err
}
