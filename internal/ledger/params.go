package ledger

import (
	"bytes"
	"encoding/json"
	"fmt"
)

// Params are chain-wide rules fixed in genesis (app_state.params).
type Params struct {
	// AcceptDeadlineBlocks is how many blocks a created contract waits for
	// its node to accept it before it expires.
	AcceptDeadlineBlocks int64 `cbor:"accept_deadline_blocks" json:"accept_deadline_blocks"`
	// MaxTxTTL is the furthest ahead, in seconds, a transaction's expiry may
	// lie; it bounds how long a signed transaction stays usable.
	MaxTxTTL int64 `cbor:"max_tx_ttl" json:"max_tx_ttl_seconds"`
}

// DefaultParams are used for fields genesis leaves out.
func DefaultParams() Params {
	return Params{AcceptDeadlineBlocks: 120, MaxTxTTL: 3600}
}

// Validate checks the params are usable.
func (p Params) Validate() error {
	if p.AcceptDeadlineBlocks < 1 || p.AcceptDeadlineBlocks > 1_000_000 {
		return fmt.Errorf("ledger: params.accept_deadline_blocks %d: want 1..1000000", p.AcceptDeadlineBlocks)
	}
	if p.MaxTxTTL < 10 || p.MaxTxTTL > 7*24*3600 {
		return fmt.Errorf("ledger: params.max_tx_ttl_seconds %d: want 10..604800", p.MaxTxTTL)
	}
	return nil
}

// GenesisState is the app_state of genesis.json.
type GenesisState struct {
	Params Params `json:"params"`
}

// ParseGenesis reads app_state; empty input means defaults.
func ParseGenesis(b []byte) (GenesisState, error) {
	g := GenesisState{Params: DefaultParams()}
	if len(b) == 0 || string(b) == "null" {
		return g, nil
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&g); err != nil {
		return g, fmt.Errorf("ledger: genesis app_state: %w", err)
	}
	return g, g.Params.Validate()
}

// MarshalGenesis renders app_state for genesis.json.
func MarshalGenesis(g GenesisState) (json.RawMessage, error) {
	if err := g.Params.Validate(); err != nil {
		return nil, err
	}
	return json.Marshal(g)
}
