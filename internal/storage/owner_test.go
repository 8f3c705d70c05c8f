package storage_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/zerogrid/zerogrid/internal/storage"
	"github.com/zerogrid/zerogrid/internal/storage/shamir"
)

// allShards reads every shard of w's segment: header, share and data.
func allShards(t *testing.T, c *cluster, ref storage.SegmentRef) (*storage.ShardHeader, []shamir.Share, [][]byte) {
	t.Helper()
	var hdr *storage.ShardHeader
	var shares []shamir.Share
	var data [][]byte
	for _, s := range ref.Shards {
		h, d, _, err := storage.VerifyShard(c.raw(ref.ID, s))
		if err != nil {
			t.Fatal(err)
		}
		hdr = h
		shares = append(shares, shamir.Share{X: byte(h.Index + 1), Y: bytes.Clone(h.Share[:])})
		data = append(data, d)
	}
	return hdr, shares, data
}

func decoder(t *testing.T, c *cluster, owner *storage.OwnerKey) *storage.Decoder {
	t.Helper()
	d, err := storage.NewDecoder(storage.DecoderConfig{Backends: c.backends, Owner: owner})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

func ownerKey(t *testing.T, fill byte) *storage.OwnerKey {
	t.Helper()
	o, err := storage.NewOwnerKey(bytes.Repeat([]byte{fill}, 32))
	if err != nil {
		t.Fatal(err)
	}
	return o
}

// TestAllBackendsWithoutTheOwnerKeyLearnNothing plays all n backends
// colluding: every shard's raw bytes, so the Shamir secret too, and still
// no plaintext without the owner key.
func TestAllBackendsWithoutTheOwnerKeyLearnNothing(t *testing.T) {
	t.Parallel()
	c := newCluster(t, small, 6)
	plain := text(200_000, 3)
	w := c.put(plain)
	hdr, shares, data := allShards(t, c, w.Ref)
	if hdr.Version != storage.FormatVersion {
		t.Fatalf("new segment has format version %d, want %d", hdr.Version, storage.FormatVersion)
	}
	secret, err := shamir.Combine(shares)
	if err != nil {
		t.Fatal(err)
	}
	// The Shamir secret alone, as the key: no.
	if _, err := storage.OpenSealed(secret, hdr, data[:small.K]); !errors.Is(err, storage.ErrDecrypt) {
		t.Fatalf("decrypt with the Shamir secret alone: %v, want ErrDecrypt", err)
	}
	// The secret bound to somebody else's owner key: no.
	if _, err := storage.OpenSealed(boundKeyOf(t, secret, ownerKey(t, 7), hdr), hdr, data[:small.K]); !errors.Is(err, storage.ErrDecrypt) {
		t.Fatalf("decrypt with another owner's key: %v, want ErrDecrypt", err)
	}
	// A decoder without an owner key says what is missing.
	if _, err := decoder(t, c, nil).DecodeSegment(context.Background(), w.Ref, nil); !errors.Is(err, storage.ErrOwnerKey) || !strings.Contains(err.Error(), "mnemonic") {
		t.Fatalf("read without an owner key: %v, want ErrOwnerKey naming the mnemonic", err)
	}
	if _, err := decoder(t, c, ownerKey(t, 7)).DecodeSegment(context.Background(), w.Ref, nil); !errors.Is(err, storage.ErrDecrypt) {
		t.Fatalf("read with another owner's key: %v, want ErrDecrypt", err)
	}
	// The owner reads it; the secret bound to the owner key is the key.
	r, err := decoder(t, c, testOwner).DecodeSegment(context.Background(), w.Ref, nil)
	if err != nil || !bytes.Equal(r.Data, plain) {
		t.Fatalf("owner's read: %v", err)
	}
	if _, err := storage.OpenSealed(boundKeyOf(t, secret, testOwner, hdr), hdr, data[:small.K]); err != nil {
		t.Fatalf("decrypt with the secret bound to the owner key: %v", err)
	}
}

func boundKeyOf(t *testing.T, secret []byte, o *storage.OwnerKey, h *storage.ShardHeader) []byte {
	t.Helper()
	k, err := storage.SegmentKey(secret, o, h)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestRebuildNeedsNoOwnerKey: repair by a process without the mnemonic
// regenerates byte-identical shards, which the owner then reads.
func TestRebuildNeedsNoOwnerKey(t *testing.T) {
	t.Parallel()
	c := newCluster(t, small, 6)
	plain := randomBytes(150_000)
	w := c.put(plain)
	lost := []int{0, 4}
	before := map[int][]byte{}
	for _, i := range lost {
		before[i] = c.raw(w.Ref.ID, w.Ref.Shards[i])
		c.mems[c.byID(w.Ref.Shards[i].Backend)].Delete(context.Background(), storage.ShardName(w.Ref.ID, i))
	}
	out, _, err := decoder(t, c, nil).Rebuild(context.Background(), w.Ref, lost)
	if err != nil {
		t.Fatalf("rebuild without the owner key: %v", err)
	}
	for _, r := range out {
		if !bytes.Equal(r.Shard, before[r.Index]) {
			t.Fatalf("rebuilt shard %d differs from the original", r.Index)
		}
		c.store(w.Ref.ID, w.Ref.Shards[r.Index], r.Shard)
	}
	// With the rebuilt shards and two others lost, the owner still reads.
	for _, i := range []int{1, 2} {
		c.mems[c.byID(w.Ref.Shards[i].Backend)].Delete(context.Background(), storage.ShardName(w.Ref.ID, i))
	}
	r, err := decoder(t, c, testOwner).DecodeSegment(context.Background(), w.Ref, nil)
	if err != nil || !bytes.Equal(r.Data, plain) {
		t.Fatalf("read after rebuild: %v", err)
	}
}

// TestVersion1SegmentsStayReadable: segments written before key binding
// (format version 1, as a LegacyV1 encoder writes them) are read with or
// without an owner key, and rebuilt as version 1.
func TestVersion1SegmentsStayReadable(t *testing.T) {
	t.Parallel()
	c := newCluster(t, small, 6)
	old, err := storage.NewEncoder(storage.LegacyV1(storage.Config{Params: small, Backends: c.backends}))
	if err != nil {
		t.Fatal(err)
	}
	plain := text(100_000, 5)
	w, err := old.EncodeSegment(context.Background(), plain)
	if err != nil {
		t.Fatal(err)
	}
	hdr, shares, data := allShards(t, c, w.Ref)
	if hdr.Version != 1 {
		t.Fatalf("legacy encoder wrote version %d", hdr.Version)
	}
	secret, _ := shamir.Combine(shares)
	if _, err := storage.OpenSealed(secret, hdr, data[:small.K]); err != nil {
		t.Fatalf("version 1: the Shamir secret is the key: %v", err)
	}
	for _, o := range []*storage.OwnerKey{nil, testOwner} {
		r, err := decoder(t, c, o).DecodeSegment(context.Background(), w.Ref, nil)
		if err != nil || !bytes.Equal(r.Data, plain) {
			t.Fatalf("read version 1 (owner key %v): %v", o != nil, err)
		}
	}
	out, _, err := decoder(t, c, nil).Rebuild(context.Background(), w.Ref, []int{3})
	if err != nil || !bytes.Equal(out[0].Shard, c.raw(w.Ref.ID, w.Ref.Shards[3])) {
		t.Fatalf("rebuild version 1: %v", err)
	}
}

func TestEncoderRequiresAnOwnerKey(t *testing.T) {
	t.Parallel()
	c := newCluster(t, small, 6)
	_, err := storage.NewEncoder(storage.Config{Params: small, Backends: c.backends})
	if !errors.Is(err, storage.ErrParams) || !strings.Contains(err.Error(), "NewOwnerKey") {
		t.Fatalf("encoder without an owner key: %v, want ErrParams saying how to get one", err)
	}
}

func TestOwnerKeyNeverPrints(t *testing.T) {
	t.Parallel()
	secret := bytes.Repeat([]byte{0x5a}, 32)
	o, err := storage.NewOwnerKey(secret)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{fmt.Sprint(o), fmt.Sprintf("%v %+v %#v %s", o, o, o, o)} {
		if !strings.Contains(s, "redacted") || strings.Contains(s, "5a5a") {
			t.Fatalf("owner key prints as %q", s)
		}
	}
	if _, err := storage.NewOwnerKey(secret[:31]); err == nil {
		t.Fatal("a 31-byte storage secret was accepted")
	}
}
