package storage_test

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/zerogrid/zerogrid/internal/storage"
	"github.com/zerogrid/zerogrid/internal/storage/shamir"
)

// TestKMinusOneShardsRevealNothing plays an attacker who holds k−1 = 3
// shards of a 4+2 segment (say, every backend of one failure domain and
// then some).
func TestKMinusOneShardsRevealNothing(t *testing.T) {
	t.Parallel()
	c := newCluster(t, small, 6)
	plain := text(200_000, 9)
	w := c.put(plain)
	held := []storage.ShardLoc{w.Ref.Shards[0], w.Ref.Shards[2], w.Ref.Shards[5]}
	missingX := byte(w.Ref.Shards[1].Index + 1) // a share the attacker lacks

	// 1. The decoder, given only these backends, cannot read the segment.
	var mine []storage.Backend
	for _, s := range held {
		mine = append(mine, c.backends[c.byID(s.Backend)])
	}
	dec, err := storage.NewDecoder(storage.DecoderConfig{Owner: testOwner, Backends: mine})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dec.DecodeSegment(context.Background(), w.Ref, nil); !errors.Is(err, storage.ErrTooFewShards) {
		t.Fatalf("read from k−1 shards: %v, want ErrTooFewShards", err)
	}

	// 2. Their shares give a wrong key: even with every data shard (more
	// ciphertext than k−1 shards hold), it does not decrypt.
	var shares []shamir.Share
	var hdr *storage.ShardHeader
	for _, s := range held {
		h, _, _, err := storage.VerifyShard(c.raw(w.Ref.ID, s))
		if err != nil {
			t.Fatal(err)
		}
		hdr = h
		shares = append(shares, shamir.Share{X: byte(h.Index + 1), Y: bytes.Clone(h.Share[:])})
	}
	var data [][]byte
	for _, s := range w.Ref.Shards[:4] {
		_, d, _, err := storage.VerifyShard(c.raw(w.Ref.ID, s))
		if err != nil {
			t.Fatal(err)
		}
		data = append(data, d)
	}
	guess, err := shamir.Combine(shares)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := storage.OpenSealed(boundKey(t, guess, hdr), hdr, data); !errors.Is(err, storage.ErrDecrypt) {
		t.Fatalf("decrypt with a key from k−1 shares: %v, want ErrDecrypt", err)
	}

	// 3. The k−1 shares rule out no key: for any candidate, each key byte
	// has exactly one value of the missing share completing the held ones
	// to it. Only the true key's completion (the real share) decrypts.
	realKey := completeAndCombine(t, shares, missingX, realShare(t, c, w.Ref))
	if _, err := storage.OpenSealed(boundKey(t, realKey, hdr), hdr, data); err != nil {
		t.Fatalf("the real share should decrypt: %v", err)
	}
	for _, cand := range [][]byte{make([]byte, 32), bytes.Repeat([]byte{0xff}, 32), randomBytes(32), realKey} {
		completion := complete(t, shares, missingX, cand)
		key := completeAndCombine(t, shares, missingX, completion)
		if !bytes.Equal(key, cand) {
			t.Fatal("completion does not give the candidate key")
		}
		_, err := storage.OpenSealed(boundKey(t, key, hdr), hdr, data)
		if isReal := bytes.Equal(cand, realKey); isReal != (err == nil) {
			t.Fatalf("candidate (real=%v) decrypts: %v", isReal, err)
		}
	}
}

// boundKey derives the AEAD key from a segment secret with the owner key: the
// attacker here is given the owner key too, so only the shares stand in the
// way.
func boundKey(t *testing.T, secret []byte, h *storage.ShardHeader) []byte {
	t.Helper()
	key, err := storage.SegmentKey(secret, testOwner, h)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// realShare reads the share of shard 1 (the one the attacker lacks).
func realShare(t *testing.T, c *cluster, ref storage.SegmentRef) []byte {
	h, _, _, err := storage.VerifyShard(c.raw(ref.ID, ref.Shards[1]))
	if err != nil {
		t.Fatal(err)
	}
	return bytes.Clone(h.Share[:])
}

func completeAndCombine(t *testing.T, held []shamir.Share, x byte, y []byte) []byte {
	all := append(append([]shamir.Share(nil), held...), shamir.Share{X: x, Y: y})
	key, err := shamir.Combine(all)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// complete finds, byte by byte, every value of the missing share at x that
// makes the held shares combine to cand, and checks there is exactly one.
func complete(t *testing.T, held []shamir.Share, x byte, cand []byte) []byte {
	out := make([]byte, len(cand))
	for j := range cand {
		one := make([]shamir.Share, len(held), len(held)+1)
		for i, s := range held {
			one[i] = shamir.Share{X: s.X, Y: []byte{s.Y[j]}}
		}
		solutions := 0
		for v := range 256 {
			got, err := shamir.Combine(append(one, shamir.Share{X: x, Y: []byte{byte(v)}}))
			if err != nil {
				t.Fatal(err)
			}
			if got[0] == cand[j] {
				solutions++
				out[j] = byte(v)
			}
		}
		if solutions != 1 {
			t.Fatalf("key byte %d = %#x: %d completions, want exactly 1", j, cand[j], solutions)
		}
	}
	return out
}

// TestSharesDifferPerSegment: two segments of the same data get unrelated
// keys, ids and shares (the randomness is per segment).
func TestSharesDifferPerSegment(t *testing.T) {
	t.Parallel()
	c := newCluster(t, small, 6)
	plain := randomBytes(1000)
	a, b := c.put(plain), c.put(plain)
	if a.Ref.ID == b.Ref.ID {
		t.Fatal("two segments share an id")
	}
	ha, _, _, _ := storage.VerifyShard(c.raw(a.Ref.ID, a.Ref.Shards[0]))
	hb, _, _, _ := storage.VerifyShard(c.raw(b.Ref.ID, b.Ref.Shards[0]))
	if ha.Share == hb.Share {
		t.Fatal("two segments have the same share 0")
	}
}
