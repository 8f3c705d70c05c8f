package identity

// Wire tag and version of proofs of possession.
const (
	TagKeyPossession            = "key-possession"
	KeyPossessionVersion uint16 = 1
)

// possession is what a proof of possession signs: the key itself, so a
// proof for one key is never a proof for another, and the verifier's
// context.
type possession struct {
	Key     PublicKey `cbor:"key"`
	Context any       `cbor:"context"`
}

// ProvePossession signs wire.Digest(TagKeyPossession, KeyPossessionVersion,
// {key: k.Public(), context: ctx}) to show that the holder of k's public key
// has its private key. ctx must name the purpose and carry something the
// verifier chose or can check for freshness (a chain id, a twin, a nonce),
// or the proof can be replayed; it must encode canonically (see wire).
func ProvePossession(k PrivateKey, ctx any) (Signature, error) {
	if ctx == nil {
		return Signature{}, ErrNoContext
	}
	return k.Sign(TagKeyPossession, KeyPossessionVersion, possession{Key: k.Public(), Context: ctx})
}

// VerifyPossession checks a ProvePossession signature by pub over ctx. It
// returns ErrBadSig when the proof is wrong.
func VerifyPossession(pub PublicKey, ctx any, sig Signature) error {
	if ctx == nil {
		return ErrNoContext
	}
	return pub.Verify(TagKeyPossession, KeyPossessionVersion, possession{Key: pub, Context: ctx}, sig)
}
