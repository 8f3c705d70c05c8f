package portal

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/zerogrid/zerogrid/internal/auth"
	"github.com/zerogrid/zerogrid/internal/ledger"
)

func (s *Server) signInPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, nil, http.StatusOK, "signin.html", "Sign in", nil)
}

type beginReq struct {
	Twin uint64 `json:"twin,string"`
	Name string `json:"name"`
}

type finishReq struct {
	Flow       string          `json:"flow"`
	Credential json.RawMessage `json:"credential"`
}

func (s *Server) signInBegin(w http.ResponseWriter, r *http.Request) {
	var req beginReq
	if err := readJSON(r, &req); err != nil || req.Twin == 0 {
		s.fail(w, r, http.StatusBadRequest, errString("give your twin's number (zgrid twin show prints it)"))
		return
	}
	flow, opts, err := s.passkeys.BeginSignIn(r.Context(), req.Twin)
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"flow": flow, "publicKey": opts})
}

func (s *Server) signInFinish(w http.ResponseWriter, r *http.Request) {
	var req finishReq
	if err := readJSON(r, &req); err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	twin, handle, err := s.passkeys.FinishSignIn(r.Context(), req.Flow, req.Credential)
	if err != nil {
		s.log.Info("sign-in refused", "remote", r.RemoteAddr, "err", err)
		s.fail(w, r, statusOf(err), err)
		return
	}
	sess, token := s.sessions.Create(twin, handle, "passkey", r.RemoteAddr, r.UserAgent())
	s.setSessionCookie(w, token)
	s.log.Info("signed in", "twin", twin, "device", handle, "session", sess.ID)
	writeJSON(w, http.StatusOK, map[string]string{"redirect": "/deployments"})
}

func (s *Server) setSessionCookie(w http.ResponseWriter, token string) {
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: token, Path: "/", MaxAge: int(s.sessions.TTL().Seconds()),
		HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
}

func (s *Server) signOut(w http.ResponseWriter, r *http.Request, req *request) {
	s.sessions.End(req.token)
	http.SetCookie(w, &http.Cookie{Name: SessionCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, Secure: true, SameSite: http.SameSiteStrictMode})
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

func (s *Server) registerPage(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, nil, http.StatusOK, "register.html", "Register a passkey", r.URL.Query().Get("twin"))
}

func (s *Server) registerBegin(w http.ResponseWriter, r *http.Request) {
	var req beginReq
	if err := readJSON(r, &req); err != nil || req.Twin == 0 || len(req.Name) > 64 {
		s.fail(w, r, http.StatusBadRequest, errString("give your twin's number and a device name of at most 64 characters"))
		return
	}
	flow, opts, err := s.passkeys.BeginRegistration(r.Context(), req.Twin, req.Name)
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"flow": flow, "publicKey": opts})
}

// registerFinish checks the new passkey and answers the token that a
// current key of the twin signs (zgrid passkey add TOKEN); signed in with a
// passkey, the page instead starts a signing flow for that passkey.
func (s *Server) registerFinish(w http.ResponseWriter, r *http.Request) {
	var req finishReq
	if err := readJSON(r, &req); err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	twin, op, err := s.passkeys.FinishRegistration(req.Flow, req.Credential)
	if err != nil {
		s.fail(w, r, statusOf(err), err)
		return
	}
	token, err := auth.EncodeRegistration(twin, op)
	if err != nil {
		s.fail(w, r, http.StatusInternalServerError, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]string{
		"token": token, "command": "zgrid passkey add " + token,
		"credential": base64.RawURLEncoding.EncodeToString(op.Credential), "twin": strconv.FormatUint(twin, 10),
	})
}

// registerStatus says whether a passkey is on the ledger yet (the
// registration page polls it while the person runs the command).
func (s *Server) registerStatus(w http.ResponseWriter, r *http.Request) {
	twin, err := strconv.ParseUint(r.URL.Query().Get("twin"), 10, 64)
	cred, err2 := base64.RawURLEncoding.DecodeString(r.URL.Query().Get("cred"))
	if err != nil || err2 != nil {
		s.fail(w, r, http.StatusBadRequest, errString("twin and cred are required"))
		return
	}
	t, err := s.opts.Ledger.Twin(r.Context(), twin)
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]bool{"registered": t.ActiveKey(ledger.PasskeyHandle(twin, cred))})
}

type errString string

func (e errString) Error() string { return string(e) }
