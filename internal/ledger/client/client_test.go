package client_test

import (
	"crypto/rand"
	"testing"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
	"github.com/zerogrid/zerogrid/internal/ledger/client/clienttest"
	"github.com/zerogrid/zerogrid/internal/ledger/ledgertest"
)

// The conformance suite, against a real validator over RPC (light client,
// proofs) and against the in-process ledger.
func TestConformanceRPC(t *testing.T) {
	t.Parallel()
	clienttest.Run(t, func(t *testing.T, p ledger.Params) *client.Client { return ledgertest.Start(t, &p) })
}

func TestConformanceMemory(t *testing.T) {
	t.Parallel()
	clienttest.Run(t, func(t *testing.T, p ledger.Params) *client.Client {
		_, c := ledgertest.Memory(t, &p)
		return c
	})
}

func key(t *testing.T) identity.PrivateKey {
	k, err := identity.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func mustSubmit(t *testing.T, s *client.Signer, op ledger.Op) *client.Result {
	t.Helper()
	res, err := s.Submit(t.Context(), op)
	if err != nil {
		t.Fatalf("%s: %v", op.Kind(), err)
	}
	return res
}
