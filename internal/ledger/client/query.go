package client

import (
	"bytes"
	"context"
	"fmt"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/wire"
)

// ChainInfo returns the chain id, params and height.
func (c *Client) ChainInfo(ctx context.Context) (*ledger.ChainInfo, error) {
	var v ledger.ChainInfo
	return &v, c.query(ctx, ledger.QueryChain, nil, &v)
}

// Account returns which twin or node a key belongs to and its next sequence.
func (c *Client) Account(ctx context.Context, key identity.PublicKey) (*ledger.Account, error) {
	var v ledger.Account
	return &v, c.query(ctx, ledger.QueryAccount+key.String(), nil, &v)
}

// Twin returns a twin by id.
func (c *Client) Twin(ctx context.Context, id uint64) (*ledger.Twin, error) {
	var v ledger.Twin
	return &v, c.query(ctx, fmt.Sprintf("%s%d", ledger.QueryTwin, id), nil, &v)
}

// TwinByKey returns the twin that holds key (root or device).
func (c *Client) TwinByKey(ctx context.Context, key identity.PublicKey) (*ledger.Twin, error) {
	a, err := c.Account(ctx, key)
	if err != nil {
		return nil, err
	}
	if a.Twin == 0 {
		return nil, fmt.Errorf("%w: key %s is a node key, not a twin's", ErrNotFound, key)
	}
	return c.Twin(ctx, a.Twin)
}

// CreatedContract reads, with a proof, the contract a ContractCreate
// committed as id and checks it is the one the signer created (its
// owner's nonce): a commit notice says which id was given, the state says
// whether that is true.
func (c *Client) CreatedContract(ctx context.Context, id, owner uint64, nonce []byte) (*ledger.Contract, error) {
	con, err := c.Contract(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("read back contract %d: %w", id, err)
	}
	if con.Owner != owner || !bytes.Equal(con.Nonce, nonce) {
		return nil, fmt.Errorf("%w: the ledger said the deployment was recorded as contract %d, but contract %d is not it (owner %d)", ErrUntrusted, id, id, con.Owner)
	}
	return con, nil
}

// Farm returns a farm by id.
func (c *Client) Farm(ctx context.Context, id uint64) (*ledger.Farm, error) {
	var v ledger.Farm
	return &v, c.query(ctx, fmt.Sprintf("%s%d", ledger.QueryFarm, id), nil, &v)
}

// Node returns a node by id.
func (c *Client) Node(ctx context.Context, id uint64) (*ledger.Node, error) {
	var v ledger.Node
	return &v, c.query(ctx, fmt.Sprintf("%s%d", ledger.QueryNode, id), nil, &v)
}

// Contract returns a deployment contract by id.
func (c *Client) Contract(ctx context.Context, id uint64) (*ledger.Contract, error) {
	var v ledger.Contract
	return &v, c.query(ctx, fmt.Sprintf("%s%d", ledger.QueryContract, id), nil, &v)
}

// Name returns the contract of a gateway name.
func (c *Client) Name(ctx context.Context, name string) (*ledger.NameContract, error) {
	var v ledger.NameContract
	return &v, c.query(ctx, ledger.QueryName+name, nil, &v)
}

// Gateway returns the gateway account of key: where its tunnel listener is.
func (c *Client) Gateway(ctx context.Context, key identity.PublicKey) (*ledger.Gateway, error) {
	var v ledger.Gateway
	return &v, c.query(ctx, ledger.QueryGateway+key.String(), nil, &v)
}

// NameServers returns the keys a gateway may accept a tunnel for name
// from: the keys its owner authorized and the nodes serving the owner's
// gateway-name workloads for it.
func (c *Client) NameServers(ctx context.Context, name string) (ledger.NameServers, error) {
	var v ledger.NameServers
	return v, c.query(ctx, ledger.QueryNameServers+name, nil, &v)
}

// ContractsByTwin returns all contracts a twin owns, in id order.
func (c *Client) ContractsByTwin(ctx context.Context, twin uint64) ([]ledger.Contract, error) {
	return c.list(ctx, fmt.Sprintf("%s%d", ledger.QueryTwinContracts, twin))
}

// ContractsByNode returns all contracts addressed to a node, in id order.
func (c *Client) ContractsByNode(ctx context.Context, node uint64) ([]ledger.Contract, error) {
	return c.list(ctx, fmt.Sprintf("%s%d", ledger.QueryNodeContracts, node))
}

func (c *Client) list(ctx context.Context, path string) ([]ledger.Contract, error) {
	var out []ledger.Contract
	req := ledger.ListRequest{}
	for {
		data, err := wire.Marshal(req)
		if err != nil {
			return nil, err
		}
		var page ledger.ContractList
		if err := c.query(ctx, path, data, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Contracts...)
		if !page.More || len(page.Contracts) == 0 {
			return out, nil
		}
		req.After = page.Contracts[len(page.Contracts)-1].ID
	}
}

// Status is the chain as this client verified it: the newest verified
// header, its app hash and hash, and the validator set that signed it.
type Status struct {
	Chain      string      `json:"chain_id"`
	Height     int64       `json:"height"`
	Hash       string      `json:"hash"`
	AppHash    string      `json:"app_hash"`
	BlockTime  string      `json:"block_time"`
	CatchingUp bool        `json:"catching_up"`
	Verified   bool        `json:"verified"`
	Validators []Validator `json:"validators"`
}

// Validator is one member of the validator set.
type Validator struct {
	Address string `json:"address"`
	PubKey  string `json:"pub_key"`
	Power   int64  `json:"power"`
}

// Status reports the newest verified header and the validator set.
func (c *Client) Status(ctx context.Context) (*Status, error) {
	return c.b.Status(ctx)
}

// Nodes returns every node, removed ones included (Node.Removed), in id
// order.
func (c *Client) Nodes(ctx context.Context) ([]ledger.Node, error) {
	var out []ledger.Node
	req := ledger.ListRequest{}
	for {
		data, err := wire.Marshal(req)
		if err != nil {
			return nil, err
		}
		var page ledger.NodeList
		if err := c.query(ctx, ledger.QueryNodes, data, &page); err != nil {
			return nil, err
		}
		out = append(out, page.Nodes...)
		if !page.More || len(page.Nodes) == 0 {
			return out, nil
		}
		req.After = page.Nodes[len(page.Nodes)-1].ID
	}
}
