package client

import (
	"context"
	"fmt"
	"time"

	"github.com/zerogrid/zerogrid/internal/eventlog"
	"github.com/zerogrid/zerogrid/internal/ledger"
)

// ContractLog is a contract's verified event log.
type ContractLog struct {
	Contract uint64            `json:"contract"`
	Node     uint64            `json:"node"`
	Events   []eventlog.Signed `json:"events"`
	Head     [32]byte          `json:"-"`
	Verified bool              `json:"verified"`
}

// ContractEvents collects the events a node reported for a contract from
// the committed report transactions, and verifies them: every signature is
// the node's, every link follows the one before, and the chain ends at the
// head the ledger holds. An error means the log as served does not verify.
func (c *Client) ContractEvents(ctx context.Context, id uint64) (*ContractLog, error) {
	con, err := c.Contract(ctx, id)
	if err != nil {
		return nil, err
	}
	node, err := c.Node(ctx, con.Node)
	if err != nil {
		return nil, err
	}
	out := &ContractLog{Contract: id, Node: con.Node}
	// The transaction index is written after a block commits, so a search
	// right after a report can miss it for a moment: search again while the
	// log is shorter than the head the contract records.
	for try := 0; ; try++ {
		if out.Events, err = c.reportedEvents(ctx, id); err != nil {
			return nil, err
		}
		if uint64(len(out.Events)) >= con.EventSeq || try == indexRetries {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(indexWait):
		}
	}
	// Reports committed after the contract was read extend the chain past
	// its head; the log is cut at the head it is checked against.
	if uint64(len(out.Events)) > con.EventSeq {
		out.Events = out.Events[:con.EventSeq]
	}
	seq, head, err := eventlog.Verify(node.Key, id, 0, [32]byte{}, out.Events)
	if err != nil {
		return out, fmt.Errorf("event log of contract %d does not verify: %w", id, err)
	}
	if seq != con.EventSeq || head != con.EventHead {
		return out, fmt.Errorf("event log of contract %d ends at event %d, but the ledger's head is event %d: the validator served an incomplete log", id, seq, con.EventSeq)
	}
	out.Head, out.Verified = head, true
	return out, nil
}

// How long ContractEvents waits for the transaction index to catch up.
const (
	indexRetries = 20
	indexWait    = 100 * time.Millisecond
)

// reportedEvents returns the events of every successful report of the
// contract, in commit order.
func (c *Client) reportedEvents(ctx context.Context, id uint64) ([]eventlog.Signed, error) {
	txs, err := c.b.Reports(ctx, id)
	if err != nil {
		return nil, err
	}
	var events []eventlog.Signed
	for _, raw := range txs {
		tx, err := ledger.DecodeTx(raw)
		if err != nil || tx.Body.Op.ContractReport == nil || tx.Body.Op.ContractReport.Contract != id {
			continue // not a report of this contract: nothing of it counts
		}
		events = append(events, tx.Body.Op.ContractReport.Events...)
	}
	return events, nil
}
