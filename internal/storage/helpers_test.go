package storage_test

import (
	"context"
	"crypto/rand"
	"fmt"
	mrand "math/rand/v2"
	"testing"

	"github.com/zerogrid/zerogrid/internal/storage"
	"github.com/zerogrid/zerogrid/internal/storage/backendtest"
	"github.com/zerogrid/zerogrid/internal/storage/mem"
)

// cluster is k+m (or more) in-memory backends behind fault injectors, one
// failure domain each unless domains says otherwise.
type cluster struct {
	t        testing.TB
	mems     []*mem.Backend
	faulty   []*backendtest.Faulty
	backends []storage.Backend
	enc      *storage.Encoder
	dec      *storage.Decoder
	// seq fetches without hedging: data shards first, another only in place
	// of a failed one, so which faults it reports is deterministic.
	seq *storage.Decoder
}

func newCluster(t testing.TB, p storage.Params, n int, domains ...string) *cluster {
	t.Helper()
	c := &cluster{t: t}
	for i := range n {
		domain := fmt.Sprintf("dom%d", i)
		if i < len(domains) {
			domain = domains[i]
		}
		m := mem.New(fmt.Sprintf("b%d", i), domain)
		f := backendtest.NewFaulty(m)
		c.mems = append(c.mems, m)
		c.faulty = append(c.faulty, f)
		c.backends = append(c.backends, f)
	}
	var err error
	c.enc, err = storage.NewEncoder(storage.Config{Owner: testOwner, Params: p, Backends: c.backends})
	if err != nil {
		t.Fatal(err)
	}
	c.dec, err = storage.NewDecoder(storage.DecoderConfig{Owner: testOwner, Backends: c.backends})
	if err != nil {
		t.Fatal(err)
	}
	c.seq, err = storage.NewDecoder(storage.DecoderConfig{Owner: testOwner, Backends: c.backends, Hedge: -1})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// byID returns the index of the backend with this id.
func (c *cluster) byID(id string) int {
	for i, b := range c.backends {
		if b.ID() == id {
			return i
		}
	}
	c.t.Fatalf("no backend %s", id)
	return -1
}

// raw returns the stored bytes of shard loc of segment id.
func (c *cluster) raw(id storage.SegmentID, loc storage.ShardLoc) []byte {
	c.t.Helper()
	b, err := c.mems[c.byID(loc.Backend)].Get(context.Background(), storage.ShardName(id, loc.Index), 0, -1)
	if err != nil {
		c.t.Fatal(err)
	}
	return b
}

// store replaces the stored bytes of shard loc.
func (c *cluster) store(id storage.SegmentID, loc storage.ShardLoc, data []byte) {
	c.t.Helper()
	if err := c.mems[c.byID(loc.Backend)].Put(context.Background(), storage.ShardName(id, loc.Index), data); err != nil {
		c.t.Fatal(err)
	}
}

func (c *cluster) put(plain []byte) storage.Written {
	c.t.Helper()
	w, err := c.enc.EncodeSegment(context.Background(), plain)
	if err != nil {
		c.t.Fatal(err)
	}
	return w
}

func randomBytes(n int) []byte {
	b := make([]byte, n)
	rand.Read(b)
	return b
}

// text returns n bytes of compressible data.
func text(n int, seed uint64) []byte {
	r := mrand.New(mrand.NewPCG(seed, 0))
	words := []string{"shard ", "segment ", "backend ", "domain ", "key ", "share "}
	b := make([]byte, 0, n+10)
	for len(b) < n {
		b = append(b, words[r.IntN(len(words))]...)
	}
	return b[:n]
}

var small = storage.Params{K: 4, M: 2, SegmentSize: 256 << 10}

// testOwner is the owner key of the tests' segments.
var testOwner = func() *storage.OwnerKey {
	secret := make([]byte, 32)
	rand.Read(secret)
	o, err := storage.NewOwnerKey(secret)
	if err != nil {
		panic(err)
	}
	return o
}()
