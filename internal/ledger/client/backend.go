package client

import (
	"context"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
)

// Backend is how a Client reaches a ledger: the CometBFT RPC of a
// validator, whose block headers a light client verifies (Dial), or a
// ledger.App driven in this process (NewMemory). A Client checks every
// answer it acts on against the app hash its Backend vouches for, with
// the same code for both.
//
// Implementations are safe for concurrent use. Errors are transient (the
// validator is unreachable or behind) unless they wrap ErrUntrusted, which
// means the backend could not verify what it was given: a lying or broken
// validator, or trust that expired.
type Backend interface {
	// Chain is the chain id, from the trust root, never from an answer.
	Chain() string
	// Latest returns the newest header the backend can vouch for: its
	// height H, the app hash of the state after block H-1 that it
	// commits to, and its time.
	Latest(ctx context.Context) (Header, error)
	// Query runs an ABCI query with a proof at height (the state after
	// that block; 0: the latest the validator has).
	Query(ctx context.Context, path string, data []byte, height int64) (*abci.QueryResponse, error)
	// Broadcast hands a signed transaction to the mempool; a refusal by
	// CheckTx is a *ledger.Rejection.
	Broadcast(ctx context.Context, tx []byte) error
	// LatestHeight is the last committed height, unverified: a hint for
	// where to follow blocks from.
	LatestHeight(ctx context.Context) (int64, error)
	// Block returns what committed block h did, unverified: commit
	// notices and events are hints, and what a client acts on it reads
	// again with a proof.
	Block(ctx context.Context, h int64) (*Block, error)
	// Reports returns the raw transactions of the contract's successful
	// reports, in commit order (their events are verified by the node's
	// signatures and the head the contract records).
	Reports(ctx context.Context, contract uint64) ([][]byte, error)
	// Status reports the chain as the backend sees it: the verified
	// header and validator set.
	Status(ctx context.Context) (*Status, error)
	// Close releases the backend; later calls fail.
	Close() error
}

// Header is a verified block header's part a client uses.
type Header struct {
	Height  int64
	AppHash []byte // of the state after block Height-1
	Hash    []byte // the header's own hash
	Time    time.Time
}
