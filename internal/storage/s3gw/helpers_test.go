package s3gw

import (
	"context"
	"crypto/rand"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"

	"github.com/zerogrid/zerogrid/internal/storage"
	"github.com/zerogrid/zerogrid/internal/storage/catalog"
	"github.com/zerogrid/zerogrid/internal/storage/mem"
)

// gateway is a store of three in-memory backends (2+1, 1 MiB segments)
// served over loopback HTTP, and the key pair of its owner.
type gateway struct {
	url   string
	spool string
	creds Credentials
	store *catalog.Store

	mu       sync.Mutex
	payloads map[string]int // x-amz-content-sha256 kinds seen on PUTs
}

func storageSecret(t testing.TB) []byte {
	t.Helper()
	s := make([]byte, 32)
	rand.Read(s)
	return s
}

func newGateway(t testing.TB) *gateway {
	t.Helper()
	var bs []storage.Backend
	for i := range 3 {
		bs = append(bs, mem.New(fmt.Sprintf("b%d", i), fmt.Sprintf("rack%d", i)))
	}
	secret := storageSecret(t)
	s, err := catalog.Init(context.Background(), catalog.Options{Params: storage.Params{K: 2, M: 1, SegmentSize: 1 << 20}, Backends: bs}, secret)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Close)
	creds, err := DeriveCredentials(secret)
	if err != nil {
		t.Fatal(err)
	}
	spoolDir := t.TempDir()
	g := &gateway{creds: creds, store: s, spool: spoolDir, payloads: map[string]int{}}
	h, err := New(t.Context(), Config{Store: s, Users: []Credentials{creds}, SpoolDir: spoolDir})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Has("uploadId") {
			g.mu.Lock()
			g.payloads["multipart "+r.Method]++
			g.mu.Unlock()
		}
		if r.Method == http.MethodPut {
			kind := r.Header.Get("X-Amz-Content-Sha256")
			if len(kind) == 64 {
				kind = "sha256"
			}
			g.mu.Lock()
			g.payloads[kind]++
			g.mu.Unlock()
		}
		h.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	g.url = srv.URL
	return g
}

func (g *gateway) payloadKinds() map[string]int {
	g.mu.Lock()
	defer g.mu.Unlock()
	out := map[string]int{}
	for k, v := range g.payloads {
		out[k] = v
	}
	return out
}
