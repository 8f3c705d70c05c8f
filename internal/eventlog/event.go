// Package eventlog is the per-deployment record a node keeps of everything
// it did: a hash chain of events, each signed by the node's key.
//
// Every event names its predecessor by hash, so the chain cannot be edited
// or reordered without breaking every later link; the node signs each event,
// so every link is attributable. The node sends new events inside its status
// reports, and the ledger accepts them only when they continue the chain it
// already holds (see internal/ledger, ContractReport): what a node reported
// once stays on the replicated record and cannot be rewritten, even by the
// node. Owners verify the chain with Verify; nobody needs to trust the
// validator that serves it.
package eventlog

import (
	"errors"
	"fmt"
	"unicode/utf8"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/wire"
)

// Tag and version of event signatures and hashes.
const (
	Tag     = "node-event"
	Version = 1
)

// Limits on one event.
const (
	MaxReason   = 512
	MaxKind     = 32
	MaxWorkload = 64
)

// Event kinds a node records.
const (
	KindAccepted      = "accepted"      // the node took on a generation
	KindRefused       = "refused"       // the node will not run it (reason says why)
	KindProvisioning  = "provisioning"  // a workload is being created or changed
	KindReady         = "ready"         // a workload became ready
	KindRestarted     = "restarted"     // a workload's process was restarted
	KindDegraded      = "degraded"      // a workload is crash-looping or impaired
	KindFailed        = "failed"        // a workload cannot be run as specified
	KindDeprovisioned = "deprovisioned" // a workload was removed
)

// Errors of chain verification.
var (
	ErrBroken    = errors.New("eventlog: chain is broken")
	ErrSignature = errors.New("eventlog: event signature does not verify")
	ErrInvalid   = errors.New("eventlog: invalid event")
)

// Event is one thing a node did for a deployment.
type Event struct {
	Contract   uint64   `cbor:"contract" json:"contract"`
	Seq        uint64   `cbor:"seq" json:"seq"`   // 1, 2, 3, …
	Prev       [32]byte `cbor:"prev" json:"-"`    // Hash of event Seq-1; zero for Seq 1
	Time       int64    `cbor:"time" json:"time"` // unix milliseconds, node clock
	Generation uint64   `cbor:"gen,omitempty" json:"generation,omitempty"`
	Workload   string   `cbor:"workload,omitempty" json:"workload,omitempty"`
	Kind       string   `cbor:"kind" json:"kind"`
	Reason     string   `cbor:"reason,omitempty" json:"reason,omitempty"`
}

// Signed is an event with the node's signature over its Hash.
type Signed struct {
	Event Event              `cbor:"event" json:"event"`
	Sig   identity.Signature `cbor:"sig" json:"-"`
}

// Hash is the event's digest: what the node signs and the next event's Prev.
func (e Event) Hash() ([32]byte, error) { return wire.Digest(Tag, Version, e) }

// Validate checks the event's own fields.
func (e Event) Validate() error {
	switch {
	case e.Seq == 0:
		return fmt.Errorf("%w: sequence 0", ErrInvalid)
	case e.Kind == "" || len(e.Kind) > MaxKind:
		return fmt.Errorf("%w: kind %q", ErrInvalid, e.Kind)
	case len(e.Workload) > MaxWorkload, len(e.Reason) > MaxReason:
		return fmt.Errorf("%w: event %d: workload or reason too long", ErrInvalid, e.Seq)
	case !utf8.ValidString(e.Reason) || !utf8.ValidString(e.Kind) || !utf8.ValidString(e.Workload):
		return fmt.Errorf("%w: event %d: text is not UTF-8", ErrInvalid, e.Seq)
	}
	return nil
}

// Sign signs e with the node's key.
func Sign(key identity.PrivateKey, e Event) (Signed, error) {
	if err := e.Validate(); err != nil {
		return Signed{}, err
	}
	sig, err := key.Sign(Tag, Version, e)
	if err != nil {
		return Signed{}, err
	}
	return Signed{Event: e, Sig: sig}, nil
}

// Verify checks that events continue the chain whose last event had
// sequence seq and hash head (0 and the zero hash for an empty chain), all
// for contract, each signed by node. It returns the new sequence and head.
func Verify(node identity.PublicKey, contract, seq uint64, head [32]byte, events []Signed) (uint64, [32]byte, error) {
	for _, s := range events {
		e := s.Event
		if err := e.Validate(); err != nil {
			return seq, head, err
		}
		if e.Contract != contract {
			return seq, head, fmt.Errorf("%w: event %d is for contract %d, not %d", ErrBroken, e.Seq, e.Contract, contract)
		}
		if e.Seq != seq+1 || e.Prev != head {
			return seq, head, fmt.Errorf("%w: event %d does not follow event %d", ErrBroken, e.Seq, seq)
		}
		if err := node.Verify(Tag, Version, e, s.Sig); err != nil {
			return seq, head, fmt.Errorf("%w: event %d", ErrSignature, e.Seq)
		}
		h, err := e.Hash()
		if err != nil {
			return seq, head, err
		}
		seq, head = e.Seq, h
	}
	return seq, head, nil
}
