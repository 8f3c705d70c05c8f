package client

import (
	"context"
)

// ContractEvent is a change to a deployment contract.
type ContractEvent struct {
	Height   int64  `json:"height"`
	Contract uint64 `json:"contract"`
	Owner    uint64 `json:"owner"`
	Node     uint64 `json:"node"`
	Action   string `json:"action"` // create, update, cancel, accept, report, expire
	State    string `json:"state"`
}

// ContractFilter selects contract events; zero fields match anything.
type ContractFilter struct {
	Node  uint64
	Owner uint64
}

// WatchContracts sends every contract event after height from that matches
// f, in commit order, until ctx ends; then it closes the channel. Resume
// after a restart by passing the last height seen.
func (c *Client) WatchContracts(ctx context.Context, from int64, f ContractFilter) <-chan ContractEvent {
	out := make(chan ContractEvent, 64)
	go func() {
		defer close(out)
		_ = c.Follow(ctx, from, func(b *Block) error {
			for _, e := range b.Events {
				if e.Type != "contract" {
					continue
				}
				ce := ContractEvent{Height: e.Height, Contract: e.Uint("id"), Owner: e.Uint("owner"),
					Node: e.Uint("node"), Action: e.Attrs["action"], State: e.Attrs["state"]}
				if (f.Node != 0 && ce.Node != f.Node) || (f.Owner != 0 && ce.Owner != f.Owner) {
					continue
				}
				c.saw(ce.Height) // a read after this event shows its effect
				select {
				case out <- ce:
				case <-ctx.Done():
					return ctx.Err()
				}
			}
			return nil
		})
	}()
	return out
}
