package ledger

import (
	"fmt"

	"github.com/zerogrid/zerogrid/internal/eventlog"
	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/spec"
	"github.com/zerogrid/zerogrid/internal/wire"
)

// Domain tags and versions of the signed objects defined here.
const (
	TagTx          = "tx"
	TagDeployment  = "deployment"
	TagFarmApprove = "farm-approve-node"
	TxVersion      = 1
)

// Size limits on transactions.
const (
	MaxTxBytes      = 192 << 10
	MaxSecretsBytes = 64 << 10
	MaxNonceBytes   = 64
	MinNonceBytes   = 8
	MaxVersionLen   = 64
	MaxEndpointLen  = 64
	MaxFarmNameLen  = 64
)

// Tx is a signed transaction. Sigs holds exactly one signature, the
// signer's: its key names the account whose sequence Body.Seq must match,
// and it covers wire.Digest(TagTx, TxVersion, Body). One body has one
// byte form: the encoding is canonical, an ed25519 signature is
// deterministic and not malleable (crypto/ed25519 rejects S >= L), and no
// second or unused signature is admitted, so a transaction's bytes, its
// hash and its ID (the digest the signer signed) name the same thing.
type Tx struct {
	Body Body  `cbor:"body"`
	Sigs []Sig `cbor:"sigs"`
}

// Sig is one signature with the key that made it.
type Sig struct {
	Key identity.PublicKey `cbor:"key"`
	Sig identity.Signature `cbor:"sig"`
	// WebAuthn, for a passkey (Key is its handle, Sig all zero), is the
	// assertion over the digest (webauthn.go).
	WebAuthn *Assertion `cbor:"webauthn,omitempty"`
}

// Body is what a transaction's signatures cover.
type Body struct {
	Chain   string `cbor:"chain"`         // chain id: a tx is valid on one chain only
	Seq     uint64 `cbor:"seq,omitempty"` // the signer account's next sequence number
	Expires int64  `cbor:"exp"`           // unix seconds; rejected in blocks whose time is later
	Op      Op     `cbor:"op"`
}

// Op holds exactly one operation.
type Op struct {
	TwinRegister   *TwinRegister   `cbor:"twin_register,omitempty"`
	TwinAddKey     *TwinAddKey     `cbor:"twin_add_key,omitempty"`
	TwinRevokeKey  *TwinRevokeKey  `cbor:"twin_revoke_key,omitempty"`
	FarmCreate     *FarmCreate     `cbor:"farm_create,omitempty"`
	NodeRegister   *NodeRegister   `cbor:"node_register,omitempty"`
	NodeHeartbeat  *NodeHeartbeat  `cbor:"node_heartbeat,omitempty"`
	ContractCreate *ContractCreate `cbor:"contract_create,omitempty"`
	ContractUpdate *ContractUpdate `cbor:"contract_update,omitempty"`
	ContractCancel *ContractCancel `cbor:"contract_cancel,omitempty"`
	ContractAccept *ContractAccept `cbor:"contract_accept,omitempty"`
	ContractReport *ContractReport `cbor:"contract_report,omitempty"`
	NameClaim      *NameClaim      `cbor:"name_claim,omitempty"`
	NameRelease    *NameRelease    `cbor:"name_release,omitempty"`
	NameAuthorize  *NameAuthorize  `cbor:"name_authorize,omitempty"`
	FarmRemoveNode *FarmRemoveNode `cbor:"farm_remove_node,omitempty"`
	// GatewayAnnounce registers the signing key as a gateway, or updates
	// its tunnel address.
	GatewayAnnounce *GatewayAnnounce `cbor:"gateway_announce,omitempty"`
	// TwinAddPasskey adds a WebAuthn passkey as a device (webauthn.go).
	TwinAddPasskey *TwinAddPasskey `cbor:"twin_add_passkey,omitempty"`
}

// TwinRegister creates a twin whose root key is the signer. The signature
// over a body bound to this chain is the proof of possession of that key.
type TwinRegister struct {
	Name string `cbor:"name,omitempty"` // optional display name
}

// TwinAddKey adds a device key. Cert must be signed by the twin's root key
// and name this twin; Proof is the device key's signature over
// DeviceProof{Chain, Twin, Device}, proving the device holds its key.
type TwinAddKey struct {
	Cert  identity.SignedDeviceCert `cbor:"cert"`
	Proof identity.Signature        `cbor:"proof"`
}

// DeviceProof is the context a device key signs with
// identity.ProvePossession when it is added to a twin.
type DeviceProof struct {
	Chain  string             `cbor:"chain"`
	Twin   uint64             `cbor:"twin"`
	Device identity.PublicKey `cbor:"device"`
}

// TwinRevokeKey revokes a device key. The root key may revoke any device
// key of its twin; a device key may revoke itself. The root is never revoked.
type TwinRevokeKey struct {
	Key identity.PublicKey `cbor:"key"`
}

// FarmCreate creates a farm owned by the signing twin.
type FarmCreate struct {
	Name string `cbor:"name"`
}

// NodeRegister registers the signing key as a node of Farm. Approval is the
// farm owner's consent, signed by one of the owner's current keys.
type NodeRegister struct {
	Farm     uint64                 `cbor:"farm"`
	SealKey  identity.SealPublicKey `cbor:"seal_key"`
	Approval FarmApproval           `cbor:"approval"`
}

// FarmApproval is a farm owner's signature (TagFarmApprove) over
// FarmApprovalBody.
type FarmApproval struct {
	Body FarmApprovalBody   `cbor:"body"`
	Key  identity.PublicKey `cbor:"key"`
	Sig  identity.Signature `cbor:"sig"`
}

// FarmApprovalBody names the farm, the node key it admits and until when.
type FarmApprovalBody struct {
	Chain   string             `cbor:"chain" json:"chain"`
	Farm    uint64             `cbor:"farm" json:"farm"`
	Node    identity.PublicKey `cbor:"node" json:"node"`
	Expires int64              `cbor:"exp" json:"expires"`
}

// FarmRemoveNode takes a node out of its farm for good: its key can sign
// nothing more, and it leaves the overlay (peers drop it). Only the farm's
// owner may. Contracts on the node stay as they are; their owners cancel
// them.
type FarmRemoveNode struct {
	Node uint64 `cbor:"node"`
}

// NodeHeartbeat reports a node's total capacity and software version, its
// overlay key and endpoint (nil: the node is not on the overlay), the
// workload types it can run now, and its conditions: what is wrong with it
// that its owner and its users should see.
type NodeHeartbeat struct {
	Capacity   spec.Resources  `cbor:"capacity"`
	Version    string          `cbor:"version"`
	Overlay    *NodeOverlay    `cbor:"overlay,omitempty"`
	Types      []string        `cbor:"types,omitempty"`
	Conditions []NodeCondition `cbor:"conditions,omitempty"`
}

// NodeCondition is one thing a node reports about itself: a problem (a
// workload type it cannot run and why, a peer reached without
// post-quantum keys) or a notable state. Type is a short machine name,
// Reason the sentence a person reads.
type NodeCondition struct {
	Type   string `cbor:"type" json:"type"`
	Reason string `cbor:"reason" json:"reason"`
}

// CannotRunPrefix + a workload type is the condition a node reports for a
// type it cannot run, with the reason (e.g. "runc is not installed").
const CannotRunPrefix = "cannot-run-"

// Bounds on a heartbeat's lists.
const (
	MaxNodeConditions  = 32
	MaxConditionType   = 64
	MaxConditionReason = 512
)

// NodeOverlay is how peers reach a node on the overlay: its WireGuard
// public key (X25519, derived from its identity; unique on the chain), the
// UDP endpoint it listens on, and the proof that the node holds the key's
// private half (identity.ProveOverlayKey: an XEdDSA signature by the
// X25519 key over the chain, the node's identity key and the key).
type NodeOverlay struct {
	Key      []byte `cbor:"key" json:"key"`           // 32 bytes
	Endpoint string `cbor:"endpoint" json:"endpoint"` // IP:PORT
	Proof    []byte `cbor:"proof" json:"proof"`       // 64 bytes
}

// Deployment is what a twin signs (TagDeployment) for a node to run: it
// binds the spec and sealed secrets to the owner, node, nonce and
// generation, so a node can check the owner's consent without trusting
// anyone who relays it.
type Deployment struct {
	Chain       string   `cbor:"chain"`
	Twin        uint64   `cbor:"twin"`
	Node        uint64   `cbor:"node"`
	Nonce       []byte   `cbor:"nonce"`
	Generation  uint64   `cbor:"gen"`
	SpecHash    [32]byte `cbor:"spec_hash"`
	SecretsHash [32]byte `cbor:"secrets_hash"`
}

// ContractCreate asks Node to run Spec. SpecSig is a signature over the
// Deployment (generation 1) by one of the owner's current keys.
type ContractCreate struct {
	Node    uint64 `cbor:"node"`
	Nonce   []byte `cbor:"nonce"`
	Spec    []byte `cbor:"spec"`
	Secrets []byte `cbor:"secrets,omitempty"` // HPKE ciphertext sealed to the node's key
	SpecSig Sig    `cbor:"spec_sig"`
}

// ContractUpdate replaces the spec; Generation must be the contract's
// current generation plus one (optimistic concurrency).
type ContractUpdate struct {
	Contract   uint64 `cbor:"contract"`
	Generation uint64 `cbor:"gen"`
	Spec       []byte `cbor:"spec"`
	Secrets    []byte `cbor:"secrets,omitempty"`
	SpecSig    Sig    `cbor:"spec_sig"`
}

// ContractCancel ends a contract; only its owner may.
type ContractCancel struct {
	Contract uint64 `cbor:"contract"`
}

// ContractAccept is the addressed node taking on a generation of a
// contract; it reserves the capacity in the same transaction.
type ContractAccept struct {
	Contract   uint64 `cbor:"contract"`
	Generation uint64 `cbor:"gen"`
}

// ContractReport is the node's status of a contract's workloads, with the
// events it recorded since its last report. The events must continue the
// contract's event chain on the ledger (see internal/eventlog); the ledger
// keeps the new head, and the events themselves stay in the transaction.
type ContractReport struct {
	Contract   uint64            `cbor:"contract"`
	Generation uint64            `cbor:"gen"`
	Workloads  []WorkloadStatus  `cbor:"workloads"`
	Events     []eventlog.Signed `cbor:"events,omitempty"`
}

// MaxReportEvents bounds the events one report carries.
const MaxReportEvents = 64

// NameClaim claims a gateway name for the signing twin.
type NameClaim struct {
	Name string `cbor:"name"`
}

// NameRelease gives a name up; only its owner may.
type NameRelease struct {
	Name string `cbor:"name"`
}

// NameAuthorize replaces the keys that may serve a name through gateways
// besides the nodes that run the owner's gateway-name workloads for it
// (`zgrid expose` on a machine that is not a node). Only the owner may.
type NameAuthorize struct {
	Name string               `cbor:"name"`
	Keys []identity.PublicKey `cbor:"keys"`
}

// GatewayAnnounce says where a gateway's tunnel listener is: HOST:PORT
// (QUIC on UDP, TLS on TCP). The first announce of a key registers it as a
// gateway (sequence 0; the signature proves the gateway holds the key);
// later ones, by the same key, move the address. Specs name gateways by
// key; nodes look the address up here, so a gateway that restarts on
// another port keeps its tunnels.
type GatewayAnnounce struct {
	Address string `cbor:"address"`
}

// MaxNameKeys bounds the keys a name authorizes.
const MaxNameKeys = 16

// Kind names the single operation in op, or "" when there is not exactly one.
func (op *Op) Kind() string {
	kinds := []struct {
		set  bool
		name string
	}{
		{op.TwinRegister != nil, "twin_register"}, {op.TwinAddKey != nil, "twin_add_key"},
		{op.TwinRevokeKey != nil, "twin_revoke_key"}, {op.FarmCreate != nil, "farm_create"},
		{op.NodeRegister != nil, "node_register"}, {op.NodeHeartbeat != nil, "node_heartbeat"},
		{op.ContractCreate != nil, "contract_create"}, {op.ContractUpdate != nil, "contract_update"},
		{op.ContractCancel != nil, "contract_cancel"}, {op.ContractAccept != nil, "contract_accept"},
		{op.ContractReport != nil, "contract_report"}, {op.NameClaim != nil, "name_claim"},
		{op.NameRelease != nil, "name_release"}, {op.NameAuthorize != nil, "name_authorize"},
		{op.FarmRemoveNode != nil, "farm_remove_node"}, {op.GatewayAnnounce != nil, "gateway_announce"},
		{op.TwinAddPasskey != nil, "twin_add_passkey"},
	}
	kind := ""
	for _, k := range kinds {
		if k.set {
			if kind != "" {
				return ""
			}
			kind = k.name
		}
	}
	return kind
}

// DecodeTx parses canonical transaction bytes and checks everything that
// needs no state: size, shape, and every signature.
func DecodeTx(b []byte) (*Tx, error) {
	tx, err := decodeUnverified(b)
	if err != nil {
		return nil, err
	}
	return tx, tx.verify()
}

// decodeUnverified parses and shape-checks a transaction without checking
// its signatures.
func decodeUnverified(b []byte) (*Tx, error) {
	if len(b) > MaxTxBytes {
		return nil, reject(CodeMalformed, "transaction is %d bytes, limit %d", len(b), MaxTxBytes)
	}
	var tx Tx
	if err := wire.Unmarshal(b, &tx); err != nil {
		return nil, reject(CodeMalformed, "cannot decode transaction: %v", err)
	}
	if tx.Body.Op.Kind() == "" {
		return nil, reject(CodeMalformed, "transaction must hold exactly one operation")
	}
	if len(tx.Sigs) != 1 {
		return nil, reject(CodeMalformed, "transaction has %d signatures, want exactly 1 (the signer's)", len(tx.Sigs))
	}
	return &tx, nil
}

// verify checks the signature over the body. A passkey's assertion is
// checked here for its shape and challenge only; its signature needs the
// passkey's public key, from state (checkPasskeySigner).
func (tx *Tx) verify() error {
	s := tx.Sigs[0]
	if s.WebAuthn != nil {
		return tx.verifyAssertionShape()
	}
	if err := s.Key.Verify(TagTx, TxVersion, tx.Body, s.Sig); err != nil {
		return reject(CodeBadSignature, "the signature by %s does not verify over the transaction body", s.Key)
	}
	return nil
}

// ID is what identifies the transaction: the digest its signer signed.
func (tx *Tx) ID() ([32]byte, error) { return wire.Digest(TagTx, TxVersion, tx.Body) }

// Signer is the key of the first signature: the account the tx acts for.
func (tx *Tx) Signer() identity.PublicKey { return tx.Sigs[0].Key }

// SignTx builds a transaction signed by key.
func SignTx(key identity.PrivateKey, body Body) (*Tx, []byte, error) {
	if body.Op.Kind() == "" {
		return nil, nil, fmt.Errorf("ledger: transaction must hold exactly one operation")
	}
	sig, err := key.Sign(TagTx, TxVersion, body)
	if err != nil {
		return nil, nil, err
	}
	tx := &Tx{Body: body, Sigs: []Sig{{Key: key.Public(), Sig: sig}}}
	b, err := wire.Marshal(tx)
	if err != nil {
		return nil, nil, err
	}
	return tx, b, nil
}
