package portal

import (
	"errors"
	"net/http"

	"github.com/zerogrid/zerogrid/internal/auth"
)

// Number matching (auth.Logins): the browser asks and shows the number;
// `zgrid login approve` lists and approves with a device key.

func (s *Server) loginRequest(w http.ResponseWriter, r *http.Request) {
	var req beginReq
	if err := readJSON(r, &req); err != nil || req.Twin == 0 {
		s.fail(w, r, http.StatusBadRequest, errString("give your twin's number (zgrid twin show prints it)"))
		return
	}
	lr, number, poll, err := s.logins.Request(req.Twin, r.RemoteAddr, r.UserAgent())
	if err != nil {
		s.fail(w, r, http.StatusTooManyRequests, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"id": lr.ID, "number": number, "poll": poll, "exp": lr.Expires,
		"command": "zgrid login approve --portal " + s.opts.Origin})
}

func (s *Server) loginPoll(w http.ResponseWriter, r *http.Request) {
	var req struct{ ID, Poll string }
	if err := readJSON(r, &req); err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	lr, device, err := s.logins.Poll(req.ID, req.Poll)
	if err != nil {
		s.fail(w, r, http.StatusGone, errString("the request was cancelled or expired: ask again"))
		return
	}
	if device.IsZero() {
		writeJSON(w, http.StatusOK, map[string]bool{"approved": false})
		return
	}
	sess, token := s.sessions.Create(lr.Twin, device, "number-matching", r.RemoteAddr, r.UserAgent())
	s.setSessionCookie(w, token)
	s.log.Info("signed in by number matching", "twin", lr.Twin, "device", device, "session", sess.ID)
	writeJSON(w, http.StatusOK, map[string]any{"approved": true, "redirect": "/deployments"})
}

func (s *Server) loginPending(w http.ResponseWriter, r *http.Request) {
	var q auth.Signed[auth.PendingQuery]
	if err := readJSON(r, &q); err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	reqs, err := s.logins.Pending(r.Context(), q)
	if err != nil {
		s.fail(w, r, http.StatusUnauthorized, err)
		return
	}
	if reqs == nil {
		reqs = []auth.LoginRequest{}
	}
	writeJSON(w, http.StatusOK, map[string]any{"requests": reqs})
}

func (s *Server) loginApprove(w http.ResponseWriter, r *http.Request) {
	var a auth.Signed[auth.Approval]
	if err := readJSON(r, &a); err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	left, err := s.logins.Approve(r.Context(), a)
	switch {
	case errors.Is(err, auth.ErrWrongNumber):
		writeJSON(w, http.StatusConflict, map[string]any{"error": err.Error(), "code": "wrong-number", "left": left})
	case errors.Is(err, auth.ErrCancelled):
		writeJSON(w, http.StatusGone, map[string]any{"error": err.Error(), "code": "cancelled"})
	case err != nil:
		s.fail(w, r, http.StatusUnauthorized, err)
	default:
		writeJSON(w, http.StatusOK, map[string]bool{"approved": true})
	}
}
