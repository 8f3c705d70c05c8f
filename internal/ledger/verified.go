package ledger

import (
	"crypto/sha256"
)

// maxVerified bounds the signature cache; past it the cache starts over.
const maxVerified = 1 << 18

// verifiedSet remembers the hashes of transaction bytes whose signatures
// CheckTx verified, so that FinalizeBlock does not verify them again. The
// hash covers every byte, signatures included, so a hit proves that these
// exact bytes verified; a miss (a proposal from another validator's
// mempool, or a cache that started over) just verifies. It never changes a
// result, only how much work it takes.
type verifiedSet map[[32]byte]struct{}

// decode parses raw and checks its signatures, consulting and feeding the
// cache. keep says whether a verified entry should stay for a later call.
func (v verifiedSet) decode(raw []byte, keep bool) (*Tx, error) {
	tx, err := decodeUnverified(raw)
	if err != nil {
		return nil, err
	}
	h := sha256.Sum256(raw)
	if _, ok := v[h]; ok {
		if !keep {
			delete(v, h)
		}
		return tx, nil
	}
	if err := tx.verify(); err != nil {
		return nil, err
	}
	if keep {
		if len(v) >= maxVerified {
			clear(v)
		}
		v[h] = struct{}{}
	}
	return tx, nil
}
