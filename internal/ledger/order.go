package ledger

import (
	"sort"

	"github.com/zerogrid/zerogrid/internal/identity"
)

// orderBySequence returns txs with each signer's transactions sorted by
// sequence number within the slots they already hold. Bytes that do not
// decode stay where they are.
func orderBySequence(txs [][]byte) [][]byte {
	type entry struct {
		seq uint64
		raw []byte
	}
	slots := map[identity.PublicKey][]int{}
	entries := map[identity.PublicKey][]entry{}
	var signers []identity.PublicKey
	for i, raw := range txs {
		tx, err := decodeUnverified(raw)
		if err != nil {
			continue
		}
		k := tx.Signer()
		if _, ok := slots[k]; !ok {
			signers = append(signers, k)
		}
		slots[k] = append(slots[k], i)
		entries[k] = append(entries[k], entry{tx.Body.Seq, raw})
	}
	out := append([][]byte(nil), txs...)
	for _, k := range signers {
		es := entries[k]
		sort.SliceStable(es, func(i, j int) bool { return es[i].seq < es[j].seq })
		for n, slot := range slots[k] {
			out[slot] = es[n].raw
		}
	}
	return out
}
