package ledger

import (
	"context"
	"testing"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger/passkeytest"
	"github.com/zerogrid/zerogrid/internal/wire"
)

const (
	testOrigin = "https://portal.grid.localhost:8443"
	testRPID   = "portal.grid.localhost"
)

// addPasskey registers a software passkey on w's twin, signed by signer.
func (w *world) addPasskey(signer identity.PrivateKey, ed bool) (*passkeytest.Authenticator, identity.PublicKey) {
	w.t.Helper()
	a := passkeytest.New(testRPID, testOrigin, ed)
	w.must(signer, Op{TwinAddPasskey: &TwinAddPasskey{Name: "laptop", Credential: a.Credential, PublicKey: a.COSEKey(), Origin: testOrigin, RPID: testRPID}})
	return a, PasskeyHandle(w.twin, a.Credential)
}

// passkeyTx signs body with the passkey a under handle.
func passkeyTx(t testing.TB, a *passkeytest.Authenticator, handle identity.PublicKey, body Body, o passkeytest.Options) []byte {
	t.Helper()
	id, err := wire.Digest(TagTx, TxVersion, body)
	if err != nil {
		t.Fatal(err)
	}
	auth, client, sig := a.Assert(id[:], o)
	raw, err := wire.Marshal(&Tx{Body: body, Sigs: []Sig{{Key: handle, WebAuthn: &Assertion{AuthData: auth, ClientData: client, Sig: sig}}}})
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

func (w *world) twinNow() *Twin {
	var tw Twin
	if code := w.query(QueryTwin+u(w.twin), &tw); code != 0 {
		w.t.Fatalf("query twin: %s", code)
	}
	return &tw
}

func (w *world) passkeyBody(handle identity.PublicKey, op Op) Body {
	return Body{Chain: testChain, Seq: w.twinNow().Seq, Expires: w.now.Unix() + 300, Op: op}
}

func TestPasskeySignsTransactions(t *testing.T) {
	t.Parallel()
	for _, ed := range []bool{false, true} {
		w := newWorld(t, DefaultParams())
		a, h := w.addPasskey(w.user, ed)
		e := w.twinNow().passkeyEntry(h)
		if e == nil || e.Passkey.Origin != testOrigin || !w.twinNow().ActiveKey(h) {
			t.Fatalf("passkey not recorded: %+v", e)
		}
		r := w.block(passkeyTx(t, a, h, w.passkeyBody(h, Op{NameClaim: &NameClaim{Name: "web"}}), passkeytest.Options{}))[0]
		if r.Code != 0 {
			t.Fatalf("ed25519=%v: passkey-signed tx refused: %s", ed, r.Log)
		}
		if got := w.twinNow().passkeyEntry(h).Passkey; got.Counter != a.Counter || got.LastUsed == 0 {
			t.Fatalf("counter %d last used %d, want %d", got.Counter, got.LastUsed, a.Counter)
		}
	}
}

func TestPasskeyRefusals(t *testing.T) {
	t.Parallel()
	zero := uint32(0)
	cases := []struct {
		name string
		o    passkeytest.Options
		want Code
	}{
		{"ErrOtherOrigin", passkeytest.Options{Origin: "https://portal.grid.example"}, CodeBadSignature},
		{"ErrOtherRP", passkeytest.Options{RPID: "grid.example"}, CodeBadSignature},
		{"ErrNoUV", passkeytest.Options{NoUV: true}, CodeBadSignature},
		{"ErrRegistrationCeremony", passkeytest.Options{Type: "webauthn.create"}, CodeBadSignature},
		{"ErrCounterNotAdvanced", passkeytest.Options{Counter: &zero}, CodeBadSignature},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := newWorld(t, DefaultParams())
			a, h := w.addPasskey(w.user, false)
			// One good use first, so the counter is in use.
			if r := w.block(passkeyTx(t, a, h, w.passkeyBody(h, Op{NameClaim: &NameClaim{Name: "one"}}), passkeytest.Options{}))[0]; r.Code != 0 {
				t.Fatal(r.Log)
			}
			w.refused(w.block(passkeyTx(t, a, h, w.passkeyBody(h, Op{NameClaim: &NameClaim{Name: "two"}}), tc.o))[0], tc.want)
		})
	}
}

func TestPasskeyReplayAndMalleability(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultParams())
	a, h := w.addPasskey(w.user, false)
	raw := passkeyTx(t, a, h, w.passkeyBody(h, Op{NameClaim: &NameClaim{Name: "one"}}), passkeytest.Options{})
	if r := w.block(raw)[0]; r.Code != 0 {
		t.Fatal(r.Log)
	}
	w.refused(w.block(raw)[0], CodeBadSequence)
	// The same assertion with its ECDSA signature malleated is another byte
	// form of a used signature: refused by the sequence, and by the counter.
	var tx Tx
	if err := wire.Unmarshal(raw, &tx); err != nil {
		t.Fatal(err)
	}
	tx.Sigs[0].WebAuthn.Sig = passkeytest.HighS(tx.Sigs[0].WebAuthn.Sig)
	again, _ := wire.Marshal(&tx)
	w.refused(w.block(again)[0], CodeBadSequence)
	// An assertion made for one body does not sign another.
	body := w.passkeyBody(h, Op{NameClaim: &NameClaim{Name: "two"}})
	tx.Body = body
	other, _ := wire.Marshal(&tx)
	w.refused(w.block(other)[0], CodeBadSignature)
}

func TestPasskeyRevokedSignsNothing(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultParams())
	a, h := w.addPasskey(w.user, false)
	w.must(w.user, Op{TwinRevokeKey: &TwinRevokeKey{Key: h}})
	w.refused(w.block(passkeyTx(t, a, h, w.passkeyBody(h, Op{NameClaim: &NameClaim{Name: "x"}}), passkeytest.Options{}))[0], CodeRevokedKey)
}

func TestPasskeyHandleNeedsAssertion(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultParams())
	_, h := w.addPasskey(w.user, false)
	// An ed25519 signature under a handle never verifies.
	raw, _ := wire.Marshal(&Tx{Body: w.passkeyBody(h, Op{NameClaim: &NameClaim{Name: "x"}}), Sigs: []Sig{{Key: h}}})
	w.refused(w.block(raw)[0], CodeBadSignature)
	// An assertion under an ed25519 device key is refused.
	b := w.body(w.user, Op{NameClaim: &NameClaim{Name: "y"}})
	a := passkeytest.New(testRPID, testOrigin, false)
	id, _ := wire.Digest(TagTx, TxVersion, b)
	auth, client, sig := a.Assert(id[:], passkeytest.Options{})
	raw, _ = wire.Marshal(&Tx{Body: b, Sigs: []Sig{{Key: w.user.Public(), WebAuthn: &Assertion{AuthData: auth, ClientData: client, Sig: sig}}}})
	w.refused(w.block(raw)[0], CodeBadSignature)
}

func TestTwinAddPasskeyRules(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultParams())
	a := passkeytest.New(testRPID, testOrigin, false)
	op := func(origin, rp string, cose []byte) Op {
		return Op{TwinAddPasskey: &TwinAddPasskey{Credential: a.Credential, PublicKey: cose, Origin: origin, RPID: rp}}
	}
	w.refused(w.do(w.user, op("http://portal.grid.example", "portal.grid.example", a.COSEKey())), CodeInvalid)
	w.refused(w.do(w.user, op(testOrigin, "other.example", a.COSEKey())), CodeInvalid)
	w.refused(w.do(w.user, op(testOrigin, testRPID, []byte{0xa0})), CodeInvalid)
	w.refused(w.do(w.node, op(testOrigin, testRPID, a.COSEKey())), CodeUnauthorized)
	w.must(w.user, op(testOrigin, testRPID, a.COSEKey()))
	w.refused(w.do(w.user, op(testOrigin, testRPID, a.COSEKey())), CodeConflict)
	// Another twin registering the same credential id gets its own handle:
	// it blocks nothing and cannot sign for this twin.
	w.must(w.farmer, op(testOrigin, testRPID, a.COSEKey()))
	if PasskeyHandle(w.twin, a.Credential) == PasskeyHandle(w.farmTwin, a.Credential) {
		t.Fatal("handles of two twins collide")
	}
}

func TestPasskeySignsDeployment(t *testing.T) {
	t.Parallel()
	w := newWorld(t, DefaultParams())
	a, h := w.addPasskey(w.user, false)
	raw := testSpec(t, 100)
	nonce := []byte("passkey-nonce-01")
	d := DeploymentFor(testChain, w.twin, w.nodeID, nonce, 1, raw, nil)
	dd, _ := wire.Digest(TagDeployment, TxVersion, d)
	auth, client, sig := a.Assert(dd[:], passkeytest.Options{})
	specSig := Sig{Key: h, WebAuthn: &Assertion{AuthData: auth, ClientData: client, Sig: sig}}
	op := Op{ContractCreate: &ContractCreate{Node: w.nodeID, Nonce: nonce, Spec: raw, SpecSig: specSig}}
	r := w.block(passkeyTx(t, a, h, w.passkeyBody(h, op), passkeytest.Options{}))[0]
	if r.Code != 0 {
		t.Fatalf("passkey-signed deployment refused: %s", r.Log)
	}
	var res TxResult
	if err := wire.Unmarshal(r.Data, &res); err != nil {
		t.Fatal(err)
	}
	c := w.contract(res.ID)
	owner := w.twinNow()
	if err := VerifySpecSig(owner, DeploymentFor(testChain, c.Owner, c.Node, c.Nonce, c.Generation, c.Spec, c.Secrets), c.SpecSig); err != nil {
		t.Fatalf("a node would refuse the passkey's spec signature: %v", err)
	}
	// The counter was recorded past both assertions.
	if got := owner.passkeyEntry(h).Passkey.Counter; got != a.Counter {
		t.Fatalf("counter %d, want %d", got, a.Counter)
	}
	// A spec assertion for another node does not verify.
	other := DeploymentFor(testChain, c.Owner, c.Node+1, c.Nonce, c.Generation, c.Spec, c.Secrets)
	if err := VerifySpecSig(owner, other, c.SpecSig); err == nil {
		t.Fatal("spec signature verified for another node")
	}
	// Once revoked, a node refuses the spec signature.
	w.seqs[w.user.Public()] = owner.Seq // the passkey used the twin's sequence
	w.must(w.user, Op{TwinRevokeKey: &TwinRevokeKey{Key: h}})
	if err := VerifySpecSig(w.twinNow(), DeploymentFor(testChain, c.Owner, c.Node, c.Nonce, c.Generation, c.Spec, c.Secrets), c.SpecSig); err == nil {
		t.Fatal("a revoked passkey's spec signature still verifies")
	}
}

// FuzzPasskeyAssertion feeds arbitrary authenticator data, client data and
// signatures to the assertion decoder and verifier, and whole passkey
// transactions to CheckTx: refusals with reasons, never a panic.
func FuzzPasskeyAssertion(f *testing.F) {
	a := passkeytest.New(testRPID, testOrigin, false)
	var ch [32]byte
	auth, client, sig := a.Assert(ch[:], passkeytest.Options{})
	f.Add(auth, client, sig)
	f.Add(auth[:37], []byte(`{"type":"webauthn.get","challenge":"","origin":""}`), []byte{0x30, 0})
	f.Add(append(auth[:32:32], 0x45, 0, 0, 0, 1, 0xa1), []byte("null"), []byte{1})
	pk := &Passkey{Credential: a.Credential, PublicKey: a.COSEKey(), Origin: testOrigin, RPID: testRPID}
	c := newChainT(f, DefaultParams())
	f.Fuzz(func(t *testing.T, auth, client, sig []byte) {
		as := &Assertion{AuthData: auth, ClientData: client, Sig: sig}
		if _, err := ParseAssertion(as); err != nil && err.Error() == "" {
			t.Fatal("refusal without a reason")
		}
		if _, err := VerifyAssertion(pk, as, ch); err == nil && (len(sig) == 0) {
			t.Fatal("verified without a signature")
		}
		_, _ = ParsePasskeyKey(client)
		raw, err := wire.Marshal(&Tx{Body: Body{Chain: testChain, Expires: 1, Op: Op{NameClaim: &NameClaim{Name: "x"}}},
			Sigs: []Sig{{Key: PasskeyHandle(1, auth), WebAuthn: as}}})
		if err != nil {
			t.Fatal(err)
		}
		r, err := c.app.CheckTx(context.Background(), &abci.CheckTxRequest{Tx: raw})
		if err != nil || r.Code == 0 || r.Log == "" {
			t.Fatalf("CheckTx: %v %+v", err, r)
		}
	})
}
