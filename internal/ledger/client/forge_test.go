package client_test

import (
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
	"github.com/zerogrid/zerogrid/internal/ledger/ledgertest"
)

// A validator that lies about the state (answers from another chain with
// the same id, with that chain's own valid proofs) or about the chain
// itself (serves the other chain's headers too) gets nothing past the
// client: every such answer is refused as untrusted, and the client says
// why. Once the validator answers honestly again, so does the client.
func TestRefusesForgedAnswers(t *testing.T) {
	t.Parallel()
	honest := ledgertest.Start(t, nil)
	attacker := ledgertest.Start(t, nil)
	victim, mallory := key(t), key(t)
	twin := mustSubmit(t, honest.Signer(victim), ledger.Op{TwinRegister: &ledger.TwinRegister{Name: "victim"}}).ID
	if id := mustSubmit(t, attacker.Signer(mallory), ledger.Op{TwinRegister: &ledger.TwinRegister{Name: "victim"}}).ID; id != twin {
		t.Fatalf("the forged twin has id %d, the victim %d", id, twin)
	}
	mustSubmit(t, attacker.Signer(mallory), ledger.Op{NameClaim: &ledger.NameClaim{Name: "shop"}})

	proxy := ledgertest.NewForgingProxy(t, honest.URL(), attacker.URL())
	trust := filepath.Join(t.TempDir(), "trust.json")
	root, err := honest.TrustRoot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	c, err := client.Dial(t.Context(), proxy.URL, client.Options{TrustFile: trust, TrustRoot: &root, CommitTimeout: 20 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if tw, err := c.Twin(t.Context(), twin); err != nil || tw.Root != victim.Public() {
		t.Fatalf("honest twin: %+v %v", tw, err)
	}

	proxy.Forge(ledgertest.ForgeState)
	tw, err := c.Twin(t.Context(), twin)
	if !errors.Is(err, client.ErrUntrusted) || !strings.Contains(err.Error(), "proof") {
		t.Fatalf("forged twin record: %+v, err %v; want an untrusted answer naming the proof", tw, err)
	}
	if _, err := c.NameServers(t.Context(), "shop"); !errors.Is(err, client.ErrUntrusted) {
		t.Fatalf("forged name servers: %v", err)
	}
	if _, err := c.ContractsByTwin(t.Context(), twin); !errors.Is(err, client.ErrUntrusted) {
		t.Fatalf("forged contract list: %v", err)
	}
	if at, err := c.LastUntrusted(); err == nil || at.IsZero() {
		t.Fatal("the refusal is not recorded for the node's conditions")
	}

	proxy.Forge(ledgertest.ForgeAll)
	if _, err := c.Twin(t.Context(), twin); !errors.Is(err, client.ErrUntrusted) {
		t.Fatalf("forged chain: %v", err)
	}

	// When the validator tells the truth again, the client reads again.
	proxy.Forge(ledgertest.Honest)
	if tw, err := c.Twin(t.Context(), twin); err != nil || tw.Root != victim.Public() {
		t.Fatalf("honest again: %+v %v", tw, err)
	}
	proxy.Forge(ledgertest.ForgeAll)

	// A trust root of another chain (a ledger started anew) is refused
	// with what to do.
	other, err := attacker.TrustRoot(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	_, err = client.Dial(t.Context(), honest.URL(), client.Options{TrustOptions: fmt.Sprintf("%d:%s", root.Height, other.Hash)})
	if !errors.Is(err, client.ErrUntrusted) {
		t.Fatalf("another chain's header as the trust options: %v", err)
	}
	stale := filepath.Join(t.TempDir(), "stale.json")
	if err := client.WriteTrustFile(stale, client.TrustRoot{Chain: root.Chain, Height: root.Height, Hash: other.Hash, Period: root.Period}); err != nil {
		t.Fatal(err)
	}
	_, err = client.Dial(t.Context(), honest.URL(), client.Options{TrustFile: stale})
	if !errors.Is(err, client.ErrUntrusted) || !strings.Contains(err.Error(), "must go") {
		t.Fatalf("a trust file of another chain: %v", err)
	}

	// A root older than its trust period is refused, saying what to do.
	old := root
	old.Period = time.Millisecond
	if _, err := client.Dial(t.Context(), honest.URL(), client.Options{TrustRoot: &old}); !errors.Is(err, client.ErrUntrusted) || !strings.Contains(err.Error(), "--trust-options") {
		t.Fatalf("an expired trust root: %v", err)
	}

	// A client that starts from the trust file while the validator lies
	// refuses to start: the other chain's block at the trusted height is
	// not the trusted one, or it has no such block yet.
	_, err = client.Dial(t.Context(), proxy.URL, client.Options{TrustFile: trust})
	if !errors.Is(err, client.ErrUntrusted) && (err == nil || !strings.Contains(err.Error(), "does not have the block this client trusts")) {
		t.Fatalf("dial through a lying validator: %v", err)
	}
}
