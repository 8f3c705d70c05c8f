package portal

import (
	"encoding/json"
	"errors"
	"html/template"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/zerogrid/zerogrid/internal/auth"
	"github.com/zerogrid/zerogrid/internal/ledger"
)

// MaxBody bounds every request body the portal reads.
const MaxBody = 256 << 10

var funcs = template.FuncMap{
	"time":  func(t time.Time) string { return t.UTC().Format("2006-01-02 15:04:05 UTC") },
	"lower": strings.ToLower,
	"kind": func(e ledger.KeyEntry) string {
		if e.Passkey != nil {
			return "passkey"
		}
		return "device key"
	},
}

// page is what every template gets.
type page struct {
	Title  string
	Signed bool
	Twin   uint64
	CSRF   string
	Data   any
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, req *request, status int, name, title string, data any) {
	p := page{Title: title, Data: data}
	if req != nil {
		p.Signed, p.Twin, p.CSRF = true, req.sess.Twin, req.sess.CSRF
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.WriteHeader(status)
	if err := s.tmpl.ExecuteTemplate(w, name, p); err != nil {
		s.log.Error("render", "page", name, "err", err)
	}
}

// fail answers an error: JSON for the script's API calls, a page otherwise.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, status int, err error) {
	if strings.HasPrefix(r.URL.Path, "/api/") {
		writeJSON(w, status, map[string]string{"error": err.Error()})
		return
	}
	s.render(w, r, nil, status, "error.html", "Error", err.Error())
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func readJSON(r *http.Request, v any) error {
	b, err := io.ReadAll(io.LimitReader(r.Body, MaxBody+1))
	if err != nil {
		return err
	}
	if len(b) > MaxBody {
		return errors.New("request body too large")
	}
	return json.Unmarshal(b, v)
}

// statusOf maps an error to an HTTP status.
func statusOf(err error) int {
	switch {
	case errors.Is(err, auth.ErrNotAuthorized), errors.Is(err, auth.ErrCounterReplay), errors.Is(err, auth.ErrDeviceRevoked):
		return http.StatusUnauthorized
	case errors.Is(err, auth.ErrUnknownFlow), errors.Is(err, auth.ErrNoPasskey):
		return http.StatusBadRequest
	case errors.Is(err, auth.ErrCSRF):
		return http.StatusForbidden
	}
	return http.StatusBadRequest
}
