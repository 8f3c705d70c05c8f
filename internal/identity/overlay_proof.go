package identity

import (
	"crypto/rand"
	"errors"
	"fmt"
	"io"

	"github.com/zerogrid/zerogrid/internal/wire"
)

// Wire tag and version of overlay key proofs.
const (
	TagOverlayKeyProof            = "overlay-key-proof"
	OverlayKeyProofVersion uint16 = 1
)

// ErrBadOverlayProof is returned when a proof of possession of an overlay
// key does not verify.
var ErrBadOverlayProof = errors.New("identity: overlay key proof does not verify")

// overlayClaim is what an overlay key proof signs: on this chain, this
// node (its identity key) holds this X25519 key.
type overlayClaim struct {
	Chain string    `cbor:"chain"`
	Node  PublicKey `cbor:"node"`
	Key   [32]byte  `cbor:"key"`
}

func (c overlayClaim) digest() ([32]byte, error) {
	return wire.Digest(TagOverlayKeyProof, OverlayKeyProofVersion, c)
}

// ProveOverlayKey proves possession of the X25519 private key priv: an
// XEdDSA signature (see xeddsa.go) by priv over wire.Digest(
// TagOverlayKeyProof, OverlayKeyProofVersion, {chain, node, key}), with key
// priv's public key. It binds the key to one node on one chain, so it is
// no proof for another node or chain. rand supplies XEdDSA's 64 random
// bytes.
func ProveOverlayKey(priv [32]byte, chain string, node PublicKey, rand io.Reader) ([XEdDSASignatureSize]byte, error) {
	pub, err := x25519Public(priv)
	if err != nil {
		return [XEdDSASignatureSize]byte{}, err
	}
	d, err := overlayClaim{Chain: chain, Node: node, Key: pub}.digest()
	if err != nil {
		return [XEdDSASignatureSize]byte{}, err
	}
	return xeddsaSign(priv, d[:], rand)
}

// VerifyOverlayKey checks that proof is ProveOverlayKey's proof that node
// holds the private key of the X25519 public key pub on chain. It returns
// an error wrapping ErrBadOverlayProof when it is not.
func VerifyOverlayKey(pub [32]byte, chain string, node PublicKey, proof []byte) error {
	if node.IsZero() {
		return fmt.Errorf("%w: no node key", ErrBadOverlayProof)
	}
	d, err := overlayClaim{Chain: chain, Node: node, Key: pub}.digest()
	if err != nil {
		return err
	}
	if err := xeddsaVerify(pub, d[:], proof); err != nil {
		return fmt.Errorf("%w: %v", ErrBadOverlayProof, err)
	}
	return nil
}

// OverlayKeyProof is ProveOverlayKey for the node's own overlay key
// (OverlayKey): what it announces with its overlay key on chain.
func (p PrivateKey) OverlayKeyProof(chain string) ([XEdDSASignatureSize]byte, error) {
	k, err := p.OverlayKey()
	if err != nil {
		return [XEdDSASignatureSize]byte{}, err
	}
	defer clear(k[:])
	return ProveOverlayKey(k, chain, p.Public(), rand.Reader)
}
