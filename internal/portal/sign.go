package portal

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/zerogrid/zerogrid/internal/auth"
	"github.com/zerogrid/zerogrid/internal/identity"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/wire"
)

// Bounds of a signing flow.
const (
	signTTL = 5 * time.Minute // from review to the last assertion
	txTTL   = 5 * time.Minute // the transaction's expiry
)

// signing is a transaction waiting for the session's passkey: first the
// deployment (spec_sig) when the op carries one, then the transaction. The
// server builds the bytes; only the browser's authenticator signs them.
type signing struct {
	session  string
	twin     uint64
	device   identity.PublicKey
	op       ledger.Op
	deploy   *ledger.Deployment // set until the spec is signed
	body     ledger.Body        // set at the transaction step
	redirect func(*ledger.Op, uint64) string
}

// startSigning stores a flow for op and returns its id for the page.
func (s *Server) startSigning(req *request, op ledger.Op, d *ledger.Deployment, redirect func(*ledger.Op, uint64) string) (string, error) {
	if req.sess.Method != "passkey" {
		return "", fmt.Errorf("%w: this session signed in without a passkey; sign in with a passkey to sign transactions", auth.ErrNotAuthorized)
	}
	return s.signs.Put(&signing{session: req.sess.ID, twin: req.sess.Twin, device: req.sess.Device, op: op, deploy: d, redirect: redirect}, signTTL)
}

// challenge is the next digest the flow needs signed, and the options for
// the browser.
func (s *Server) challenge(ctx context.Context, f *signing, twin *ledger.Twin) (map[string]any, error) {
	var d [32]byte
	var err error
	if f.deploy != nil {
		d, err = wire.Digest(ledger.TagDeployment, ledger.TxVersion, *f.deploy)
	} else {
		f.body = ledger.Body{Chain: s.opts.Ledger.Chain(), Seq: twin.Seq, Expires: s.opts.Now().Add(txTTL).Unix(), Op: f.op}
		d, err = wire.Digest(ledger.TagTx, ledger.TxVersion, f.body)
	}
	if err != nil {
		return nil, err
	}
	var cred []byte
	for _, e := range twin.Keys {
		if e.Key.Equal(f.device) && e.Passkey != nil {
			cred = e.Passkey.Credential
		}
	}
	return s.passkeys.RequestOptions(d, [][]byte{cred}), nil
}

type flowReq struct {
	Flow       string          `json:"flow"`
	Credential json.RawMessage `json:"credential"`
}

// take returns the caller's flow: a flow id is used once, and only by the
// session that started it.
func (s *Server) take(req *request, id string) (*signing, error) {
	f, err := s.signs.Take(id)
	if err != nil {
		return nil, err
	}
	if f.session != req.sess.ID {
		return nil, auth.ErrUnknownFlow
	}
	return f, nil
}

func (s *Server) signStart(w http.ResponseWriter, r *http.Request, req *request) {
	var fr flowReq
	if err := readJSON(r, &fr); err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	f, err := s.take(req, fr.Flow)
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	s.next(w, r, req, f)
}

// next stores the flow again under a new id and sends its next challenge.
func (s *Server) next(w http.ResponseWriter, r *http.Request, req *request, f *signing) {
	opts, err := s.challenge(r.Context(), f, req.twin)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	id, err := s.signs.Put(f, signTTL)
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"flow": id, "publicKey": opts})
}

// signStep takes the browser's assertion for the flow's current digest.
// After the spec's, it sends the transaction's challenge; after the
// transaction's, it submits the transaction and waits for its commit.
func (s *Server) signStep(w http.ResponseWriter, r *http.Request, req *request) {
	var fr flowReq
	if err := readJSON(r, &fr); err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	f, err := s.take(req, fr.Flow)
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	cred, a, err := auth.ParseResponse(fr.Credential)
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	sig := ledger.Sig{Key: ledger.PasskeyHandle(f.twin, cred), WebAuthn: a}
	if !sig.Key.Equal(f.device) {
		s.fail(w, r, http.StatusUnauthorized, fmt.Errorf("%w: sign with the passkey this session signed in with", auth.ErrNotAuthorized))
		return
	}
	if f.deploy != nil {
		if err := ledger.VerifySpecSig(req.twin, *f.deploy, sig); err != nil {
			s.fail(w, r, http.StatusUnauthorized, fmt.Errorf("%w: %v", auth.ErrNotAuthorized, err))
			return
		}
		setSpecSig(&f.op, sig)
		f.deploy = nil
		s.next(w, r, req, f)
		return
	}
	raw, err := wire.Marshal(&ledger.Tx{Body: f.body, Sigs: []ledger.Sig{sig}})
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	res, err := s.opts.Ledger.SubmitRaw(r.Context(), raw)
	if err != nil {
		s.fail(w, r, http.StatusConflict, fmt.Errorf("the ledger refused the transaction: %w", err))
		return
	}
	s.log.Info("passkey transaction", "twin", f.twin, "kind", f.op.Kind(), "height", res.Height)
	writeJSON(w, http.StatusOK, map[string]string{"redirect": f.redirect(&f.op, res.ID)})
}

func setSpecSig(op *ledger.Op, sig ledger.Sig) {
	switch {
	case op.ContractCreate != nil:
		op.ContractCreate.SpecSig = sig
	case op.ContractUpdate != nil:
		op.ContractUpdate.SpecSig = sig
	}
}

// reviewData is what the confirm page shows before a person signs.
type reviewData struct {
	Action string
	Lines  []string
	Flow   string
	Spec   string
}

func (s *Server) review(w http.ResponseWriter, r *http.Request, req *request, flow string, err error, data reviewData) {
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	data.Flow = flow
	s.render(w, r, req, http.StatusOK, "review.html", data.Action, data)
}

func (s *Server) cancelReview(w http.ResponseWriter, r *http.Request, req *request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		s.fail(w, r, http.StatusNotFound, errString("no such deployment"))
		return
	}
	c, err := s.opts.Ledger.Contract(r.Context(), id)
	if err != nil || c.Owner != req.sess.Twin {
		s.fail(w, r, http.StatusNotFound, errString("no such deployment of yours"))
		return
	}
	op := ledger.Op{ContractCancel: &ledger.ContractCancel{Contract: id}}
	flow, err := s.startSigning(req, op, nil, func(*ledger.Op, uint64) string { return "/deployments/" + u(id) })
	s.review(w, r, req, flow, err, reviewData{Action: "Cancel deployment " + u(id),
		Lines: []string{fmt.Sprintf("Contract %d on node %d, state %s, ends for good.", id, c.Node, c.State)}})
}

func (s *Server) revokeReview(w http.ResponseWriter, r *http.Request, req *request) {
	var key identity.PublicKey
	if err := key.UnmarshalText([]byte(r.PostFormValue("key"))); err != nil {
		s.fail(w, r, http.StatusBadRequest, errString("no such device"))
		return
	}
	if !key.Equal(req.sess.Device) {
		s.fail(w, r, http.StatusForbidden, fmt.Errorf("a passkey may revoke only itself; revoke other devices with your root key: zgrid --key ROOT.key twin revoke-key %s", key))
		return
	}
	op := ledger.Op{TwinRevokeKey: &ledger.TwinRevokeKey{Key: key}}
	flow, err := s.startSigning(req, op, nil, func(*ledger.Op, uint64) string { return "/signin" })
	s.review(w, r, req, flow, err, reviewData{Action: "Revoke this passkey",
		Lines: []string{"This passkey will sign nothing more, from the next block on.", "You will be signed out."}})
}

// addPasskeyBegin takes a registration token made on the devices page and
// starts a flow in which the session's passkey signs the new one in.
func (s *Server) addPasskeyBegin(w http.ResponseWriter, r *http.Request, req *request) {
	var body struct {
		Token string `json:"token"`
	}
	if err := readJSON(r, &body); err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	twin, op, err := auth.DecodeRegistration(body.Token)
	if err != nil || twin != req.sess.Twin {
		s.fail(w, r, http.StatusBadRequest, errString("this registration is for another twin or damaged"))
		return
	}
	flow, err := s.startSigning(req, ledger.Op{TwinAddPasskey: op}, nil, func(*ledger.Op, uint64) string { return "/devices" })
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{"flow": flow})
}

func u(id uint64) string { return strconv.FormatUint(id, 10) }
