package ledger

import (
	"context"
	"errors"
	"fmt"
	"testing"

	dbm "github.com/cometbft/cometbft-db"
	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/zerogrid/zerogrid/internal/wire"
)

// provenQuery asks app for a proven answer at height h (0: latest).
func provenQuery(t *testing.T, app *App, h int64, path string) *abci.QueryResponse {
	t.Helper()
	r, err := app.Query(context.Background(), &abci.QueryRequest{Path: path, Height: h, Prove: true})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// A lying validator's answer does not verify: a proof from another state
// (here a forged chain where the attacker owns the contract) fails against
// the trusted app hash, and so does a genuine proof against a wrong hash.
func TestForgedAnswersDoNotVerify(t *testing.T) {
	t.Parallel()
	honest := newWorld(t, DefaultParams())
	id := honest.must(honest.user, honest.createOp(honest.user, honest.twin, honest.nodeID, testSpec(t, 100)))
	_, trusted := honest.app.Height()

	forged := newWorld(t, DefaultParams()) // the same ids, other keys: the "attacker's" state
	forged.must(forged.user, forged.createOp(forged.user, forged.twin, forged.nodeID, testSpec(t, 100)))
	path := fmt.Sprintf("%s%d", QueryContract, id)
	r := provenQuery(t, forged.app, 0, path)
	if _, err := VerifyAnswer(trusted, r.Height, path, nil, r.ProofOps.Ops[0].Data); !errors.Is(err, ErrBadProof) {
		t.Fatalf("forged contract answer: %v, want ErrBadProof", err)
	}
	// A forged twin record (another root key for the owner) likewise.
	tpath := fmt.Sprintf("%s%d", QueryTwin, honest.twin)
	r = provenQuery(t, forged.app, 0, tpath)
	if _, err := VerifyAnswer(trusted, r.Height, tpath, nil, r.ProofOps.Ops[0].Data); !errors.Is(err, ErrBadProof) {
		t.Fatalf("forged twin answer: %v, want ErrBadProof", err)
	}
	// The honest answer verifies; a proof for one read does not answer another.
	r = provenQuery(t, honest.app, 0, path)
	b, err := VerifyAnswer(trusted, r.Height, path, nil, r.ProofOps.Ops[0].Data)
	if err != nil {
		t.Fatal(err)
	}
	var c Contract
	if err := wire.Unmarshal(b, &c); err != nil || c.Owner != honest.twin {
		t.Fatalf("verified contract: %+v %v", c, err)
	}
	if _, err := VerifyAnswer(trusted, r.Height, tpath, nil, r.ProofOps.Ops[0].Data); !errors.Is(err, ErrBadProof) {
		t.Fatalf("a contract's proof answered a twin query: %v", err)
	}
	// "Not found" is proven too: a validator cannot hide a record by
	// claiming it does not exist.
	missing := fmt.Sprintf("%s%d", QueryContract, id+1)
	r = provenQuery(t, honest.app, 0, missing)
	if _, err := VerifyAnswer(trusted, r.Height, missing, nil, r.ProofOps.Ops[0].Data); CodeOf(err) != CodeNotFound {
		t.Fatalf("absent contract: %v, want a proven not-found", err)
	}
	if _, err := VerifyAnswer(trusted, r.Height, path, nil, r.ProofOps.Ops[0].Data); !errors.Is(err, ErrBadProof) {
		t.Fatalf("an absence proof of contract %d answered for contract %d: %v", id+1, id, err)
	}
}

// Queries read recent heights with proofs against those heights' app
// hashes; heights the app no longer keeps are refused with a reason.
func TestQueryAtRecentHeights(t *testing.T) {
	t.Parallel()
	c := newChainTDB(t, DefaultParams(), dbm.NewMemDB())
	c.app.store.keep = 4
	user := newKey(t)
	hashes := map[int64][]byte{}
	h0, root := c.app.Height()
	hashes[h0] = root
	tw := c.must(user, Op{TwinRegister: &TwinRegister{Name: "v1"}})
	for i := 0; i < 6; i++ {
		c.must(user, Op{NameClaim: &NameClaim{Name: fmt.Sprintf("n%d", i)}})
		h, root := c.app.Height()
		hashes[h] = root
	}
	last, _ := c.app.Height()
	for h := last - 3; h <= last; h++ {
		path := QueryName + fmt.Sprintf("n%d", h-last+5)
		r := provenQuery(t, c.app, h, path)
		if r.Height != h {
			t.Fatalf("asked height %d, answered %d", h, r.Height)
		}
		_, err := VerifyAnswer(hashes[h], h, path, nil, r.ProofOps.Ops[0].Data)
		if err != nil {
			t.Fatalf("height %d: %v", h, err)
		}
		// The next name did not exist yet at h, provably.
		next := QueryName + fmt.Sprintf("n%d", h-last+6)
		r = provenQuery(t, c.app, h, next)
		if _, err := VerifyAnswer(hashes[h], h, next, nil, r.ProofOps.Ops[0].Data); h < last && CodeOf(err) != CodeNotFound {
			t.Fatalf("height %d: a later name: %v", h, err)
		}
	}
	if r := provenQuery(t, c.app, last-4, QueryChain); r.Code != uint32(CodeInvalid) {
		t.Fatalf("a pruned height answered: %+v", r)
	}
	_ = tw
}

// A database written by another state format is refused with a reason.
func TestOldStateFormatRefused(t *testing.T) {
	t.Parallel()
	db := dbm.NewMemDB()
	newChainTDB(t, DefaultParams(), db)
	b, _ := wire.Marshal(meta{Height: 3, AppHash: make([]byte, 32), Time: 1})
	if err := db.Set(metaKey, b); err != nil {
		t.Fatal(err)
	}
	if _, err := NewApp(db, Options{}); !errors.Is(err, ErrStateVersion) {
		t.Fatalf("opening format-1 state: %v", err)
	}
}

// State whose bytes do not hash to the committed app hash stops the app.
func TestTamperedStateRefused(t *testing.T) {
	t.Parallel()
	db := dbm.NewMemDB()
	w := &world{chainT: newChainTDB(t, DefaultParams(), db), user: newKey(t)}
	w.must(w.user, Op{TwinRegister: &TwinRegister{Name: "honest"}})
	if err := db.Set(append(append([]byte{}, keyPrefix...), kName("planted")...), []byte{0xf6}); err != nil {
		t.Fatal(err)
	}
	if _, err := NewApp(db, Options{}); !errors.Is(err, ErrCorruptState) {
		t.Fatalf("opening tampered state: %v", err)
	}
}
