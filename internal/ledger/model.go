package ledger

import (
	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/spec"
)

// Twin is an account: a root key from a mnemonic and a log of device keys.
type Twin struct {
	ID      uint64             `cbor:"id" json:"id"`
	Name    string             `cbor:"name,omitempty" json:"name,omitempty"`
	Root    identity.PublicKey `cbor:"root" json:"root"`
	Keys    []KeyEntry         `cbor:"keys,omitempty" json:"keys"`
	Seq     uint64             `cbor:"seq,omitempty" json:"seq"`
	Created int64              `cbor:"created" json:"created_height"`
}

// KeyEntry is one device key in a twin's key log. Entries are never
// removed: revocation records the height.
type KeyEntry struct {
	Key     identity.PublicKey        `cbor:"key" json:"key"`
	Name    string                    `cbor:"name,omitempty" json:"name,omitempty"`
	Cert    identity.SignedDeviceCert `cbor:"cert" json:"-"`
	Added   int64                     `cbor:"added" json:"added_height"`
	Revoked int64                     `cbor:"revoked,omitempty" json:"revoked_height,omitempty"`
	// Passkey is set for a WebAuthn passkey (Key is its PasskeyHandle,
	// Cert is empty): see webauthn.go.
	Passkey *Passkey `cbor:"passkey,omitempty" json:"passkey,omitempty"`
}

// KeyRef says which account a key belongs to (exactly one of the three).
type KeyRef struct {
	Twin    uint64 `cbor:"twin,omitempty" json:"twin,omitempty"`
	Node    uint64 `cbor:"node,omitempty" json:"node,omitempty"`
	Gateway uint64 `cbor:"gateway,omitempty" json:"gateway,omitempty"`
}

// Gateway is a web gateway's account: its key and where its tunnel
// listener is.
type Gateway struct {
	ID         uint64             `cbor:"id" json:"id"`
	Key        identity.PublicKey `cbor:"key" json:"key"`
	Address    string             `cbor:"address" json:"address"`
	Seq        uint64             `cbor:"seq,omitempty" json:"seq"`
	Registered int64              `cbor:"registered" json:"registered_height"`
	Updated    int64              `cbor:"updated" json:"updated_height"`
}

// Farm groups nodes under one owning twin.
type Farm struct {
	ID      uint64 `cbor:"id" json:"id"`
	Owner   uint64 `cbor:"owner" json:"owner"`
	Name    string `cbor:"name" json:"name"`
	Created int64  `cbor:"created" json:"created_height"`
}

// Node is a machine that runs contracts.
type Node struct {
	ID            uint64             `cbor:"id" json:"id"`
	Farm          uint64             `cbor:"farm" json:"farm"`
	Key           identity.PublicKey `cbor:"key" json:"-"`
	SealKey       []byte             `cbor:"seal_key" json:"-"` // checked at registration; parse with Seal
	Seq           uint64             `cbor:"seq,omitempty" json:"seq"`
	Capacity      spec.Resources     `cbor:"capacity" json:"capacity"`
	Reserved      spec.Resources     `cbor:"reserved" json:"reserved"`
	Version       string             `cbor:"version,omitempty" json:"version,omitempty"`
	LastHeartbeat int64              `cbor:"last_heartbeat,omitempty" json:"last_heartbeat,omitempty"` // unix seconds
	Overlay       *NodeOverlay       `cbor:"overlay,omitempty" json:"overlay,omitempty"`
	// Types are the workload types the node said it can run in its last
	// heartbeat. A contract may name only these: a node that has not said
	// (no heartbeat yet) is offered nothing.
	Types      []string        `cbor:"types,omitempty" json:"types,omitempty"`
	Conditions []NodeCondition `cbor:"conditions,omitempty" json:"conditions,omitempty"`
	Removed    int64           `cbor:"removed,omitempty" json:"removed_height,omitempty"` // height the farm removed it at
	Registered int64           `cbor:"registered" json:"registered_height"`
}

// Contract states.
const (
	StateCreated   = "created"
	StateAccepted  = "accepted"
	StateReady     = "ready"
	StateDegraded  = "degraded"
	StateFailed    = "failed"
	StateCancelled = "cancelled"
	StateExpired   = "expired"
)

// Workload conditions a node reports.
const (
	WorkloadPending      = "Pending"
	WorkloadProvisioning = "Provisioning"
	WorkloadReady        = "Ready"
	WorkloadDegraded     = "Degraded"
	WorkloadFailed       = "Failed"
)

// Contract is a deployment contract: a twin's signed spec for one node.
type Contract struct {
	ID          uint64           `cbor:"id" json:"id"`
	Owner       uint64           `cbor:"owner" json:"owner"`
	Node        uint64           `cbor:"node" json:"node"`
	Nonce       []byte           `cbor:"nonce" json:"nonce"`
	State       string           `cbor:"state" json:"state"`
	Reason      string           `cbor:"reason,omitempty" json:"reason,omitempty"`
	Generation  uint64           `cbor:"gen" json:"generation"`
	Accepted    uint64           `cbor:"accepted_gen,omitempty" json:"accepted_generation"`
	Spec        []byte           `cbor:"spec" json:"-"`
	SpecHash    [32]byte         `cbor:"spec_hash" json:"-"`
	SpecSig     Sig              `cbor:"spec_sig" json:"-"`
	Secrets     []byte           `cbor:"secrets,omitempty" json:"-"`
	SecretsHash [32]byte         `cbor:"secrets_hash" json:"-"`
	Reserved    spec.Resources   `cbor:"reserved" json:"reserved"`
	Created     int64            `cbor:"created" json:"created_height"`
	Deadline    int64            `cbor:"deadline,omitempty" json:"accept_deadline_height,omitempty"`
	Updated     int64            `cbor:"updated" json:"updated_height"`
	Workloads   []WorkloadStatus `cbor:"workloads,omitempty" json:"workloads"`
	ReportGen   uint64           `cbor:"report_gen,omitempty" json:"report_generation"`
	EventSeq    uint64           `cbor:"event_seq,omitempty" json:"event_seq"`
	EventHead   [32]byte         `cbor:"event_head" json:"-"`
}

// WorkloadStatus is a node's report of one workload's condition.
type WorkloadStatus struct {
	Name   string `cbor:"name" json:"name"`
	State  string `cbor:"state" json:"state"`
	Reason string `cbor:"reason,omitempty" json:"reason,omitempty"`
}

// Live reports whether the contract still binds its node.
func (c *Contract) Live() bool {
	switch c.State {
	case StateCancelled, StateExpired:
		return false
	}
	return true
}

// NameContract gives one twin a gateway name.
type NameContract struct {
	Name    string `cbor:"name" json:"name"`
	Owner   uint64 `cbor:"owner" json:"owner"`
	Claimed int64  `cbor:"claimed" json:"claimed_height"`
	// Keys may serve the name besides the owner's nodes (NameAuthorize).
	Keys []identity.PublicKey `cbor:"keys,omitempty" json:"keys,omitempty"`
}

// Counters hold the next ids.
type Counters struct {
	Twin     uint64 `cbor:"twin,omitempty"`
	Farm     uint64 `cbor:"farm,omitempty"`
	Node     uint64 `cbor:"node,omitempty"`
	Contract uint64 `cbor:"contract,omitempty"`
	Gateway  uint64 `cbor:"gateway,omitempty"`
}

// State keys.
const (
	kParams   = "params"
	kChain    = "chain"
	kCounters = "counters"
)

func kTwin(id uint64) string                   { return u64key("twin/", id) }
func kKey(k identity.PublicKey) string         { return "key/" + string(k[:]) }
func kFarm(id uint64) string                   { return u64key("farm/", id) }
func kNode(id uint64) string                   { return u64key("node/", id) }
func kContract(id uint64) string               { return u64key("contract/", id) }
func kByTwin(twin, id uint64) string           { return u64key("by-twin/", twin, id) }
func kByNode(node, id uint64) string           { return u64key("by-node/", node, id) }
func kDeadline(height int64, id uint64) string { return u64key("deadline/", uint64(height), id) }
func kNonce(twin uint64, nonce []byte) string  { return u64key("nonce/", twin) + string(nonce) }
func kName(name string) string                 { return "name/" + name }
func kOverlayKey(k []byte) string              { return "overlay-key/" + string(k) }
func kGateway(id uint64) string                { return u64key("gateway/", id) }

// Seal parses the node's sealing key (validated when the node registered;
// kept as bytes so that reading a node record does not parse an ML-KEM key).
func (n *Node) Seal() (identity.SealPublicKey, error) {
	return identity.NewSealPublicKey(n.SealKey)
}
