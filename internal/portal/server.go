// Package portal is the web portal of a twin's virtual data center:
// server-rendered pages (sign in, deployments with their conditions and
// verified events, deploy, cancel, devices and sessions) and a small
// script for WebAuthn.
//
// The portal holds no account and no key. A person signs in with a
// passkey that the twin's key log on the ledger lists (auth.Passkeys); every
// change is a ledger transaction that the passkey itself signs in the
// browser (a WebAuthn assertion whose challenge is the transaction's
// digest), so the server can show and relay, never act on its own. Every
// ledger answer it shows or acts on comes through the verified client.
package portal

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"net/url"
	"time"

	"github.com/zerogrid/zerogrid/internal/auth"
	"github.com/zerogrid/zerogrid/internal/eventlog"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/ledger/client"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Ledger is what the portal reads and submits; *client.Client (the
// verified client) implements it, and the portal takes nothing from a
// ledger by any other path. Implementations must be safe for concurrent use.
type Ledger interface {
	Chain() string
	Twin(ctx context.Context, id uint64) (*ledger.Twin, error)
	ContractsByTwin(ctx context.Context, twin uint64) ([]ledger.Contract, error)
	Contract(ctx context.Context, id uint64) (*ledger.Contract, error)
	ContractEvents(ctx context.Context, id uint64) (*client.ContractLog, error)
	Node(ctx context.Context, id uint64) (*ledger.Node, error)
	SubmitRaw(ctx context.Context, raw []byte) (*client.Result, error)
}

var _ Ledger = (*client.Client)(nil)

// SessionCookie is the session cookie's name. The __Host- prefix makes the
// browser refuse it unless it is Secure, has no Domain and Path is /.
const SessionCookie = "__Host-zg_session"

// Options configure a portal.
type Options struct {
	Origin string // https://portal.grid.localhost:8443: the only origin passkeys are used on
	RPID   string // WebAuthn relying party id: the origin's host or a parent of it
	Ledger Ledger
	// DefaultNode is the node a spec without `node:` deploys to (0: none;
	// zgrid up passes its first node).
	DefaultNode uint64
	// ResolveImage pins an image named by a tag (REPO:TAG) to a digest;
	// nil refuses tags.
	ResolveImage func(ctx context.Context, ref string) (string, error)
	SessionTTL   time.Duration
	Logger       *slog.Logger
	Now          func() time.Time
}

// Server is the portal's HTTP handler.
type Server struct {
	opts     Options
	passkeys *auth.Passkeys
	sessions *auth.Sessions
	signs    *auth.Flows[*signing]
	logins   *auth.Logins
	tmpl     *template.Template
	mux      *http.ServeMux
	log      *slog.Logger
}

// New checks opts and builds the portal.
func New(opts Options) (*Server, error) {
	if opts.Ledger == nil {
		return nil, errors.New("portal: no ledger client")
	}
	u, err := url.Parse(opts.Origin)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("portal: origin %q is not scheme://host[:port]", opts.Origin)
	}
	if opts.RPID == "" {
		opts.RPID = u.Hostname()
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	pk, err := auth.NewPasskeys(auth.PasskeyConfig{Origin: opts.Origin, RPID: opts.RPID, Now: opts.Now}, opts.Ledger)
	if err != nil {
		return nil, err
	}
	tmpl, err := template.New("").Funcs(funcs).ParseFS(templateFS, "templates/*.html")
	if err != nil {
		return nil, err
	}
	s := &Server{opts: opts, passkeys: pk, sessions: auth.NewSessions(opts.SessionTTL, opts.Now),
		signs: auth.NewFlows[*signing](opts.Now), logins: auth.NewLogins(opts.Origin, opts.Ledger, opts.Now), tmpl: tmpl, mux: http.NewServeMux(), log: opts.Logger}
	s.routes()
	return s, nil
}

// Sessions is the portal's session store (for tests and benchmarks).
func (s *Server) Sessions() *auth.Sessions { return s.sessions }

func (s *Server) routes() {
	static, _ := fs.Sub(staticFS, "static")
	s.mux.Handle("GET /static/", http.StripPrefix("/static/", http.FileServerFS(static)))
	s.mux.HandleFunc("GET /{$}", s.home)
	s.mux.HandleFunc("GET /signin", s.signInPage)
	s.mux.HandleFunc("POST /api/signin/begin", s.signInBegin)
	s.mux.HandleFunc("POST /api/signin/finish", s.signInFinish)
	s.mux.HandleFunc("POST /api/login/request", s.loginRequest)
	s.mux.HandleFunc("POST /api/login/poll", s.loginPoll)
	s.mux.HandleFunc("POST /api/login/pending", s.loginPending)
	s.mux.HandleFunc("POST /api/login/approve", s.loginApprove)
	s.mux.HandleFunc("GET /register", s.registerPage)
	s.mux.HandleFunc("POST /api/register/begin", s.registerBegin)
	s.mux.HandleFunc("POST /api/register/finish", s.registerFinish)
	s.mux.HandleFunc("GET /api/register/status", s.registerStatus)
	s.mux.HandleFunc("POST /signout", s.authed(s.signOut))
	s.mux.HandleFunc("GET /deployments", s.authed(s.deploymentsPage))
	s.mux.HandleFunc("GET /deployments/{id}", s.authed(s.deploymentPage))
	s.mux.HandleFunc("POST /deployments/{id}/cancel", s.authed(s.cancelReview))
	s.mux.HandleFunc("POST /deployments/{id}/update", s.authed(s.updateReview))
	s.mux.HandleFunc("GET /deploy", s.authed(s.deployPage))
	s.mux.HandleFunc("POST /deploy", s.authed(s.deployReview))
	s.mux.HandleFunc("GET /devices", s.authed(s.devicesPage))
	s.mux.HandleFunc("POST /devices/revoke", s.authed(s.revokeReview))
	s.mux.HandleFunc("POST /devices/add", s.authed(s.addPasskeyBegin))
	s.mux.HandleFunc("POST /sessions/revoke", s.authed(s.revokeSession))
	s.mux.HandleFunc("POST /api/sign/start", s.authed(s.signStart))
	s.mux.HandleFunc("POST /api/sign/step", s.authed(s.signStep))
}

// ServeHTTP sets the security headers and refuses cross-origin writes
// before any handler runs.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h := w.Header()
	h.Set("Content-Security-Policy", "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "same-origin") // no-referrer would make form posts say Origin: null
	h.Set("X-Frame-Options", "DENY")
	h.Set("Cache-Control", "no-store")
	if r.Method != http.MethodGet && r.Method != http.MethodHead {
		r.Body = http.MaxBytesReader(w, r.Body, MaxBody)
		if o := r.Header.Get("Origin"); o != s.opts.Origin {
			http.Error(w, "refused: this request comes from another origin ("+o+") than the portal's", http.StatusForbidden)
			return
		}
		if site := r.Header.Get("Sec-Fetch-Site"); site != "" && site != "same-origin" {
			http.Error(w, "refused: cross-site request", http.StatusForbidden)
			return
		}
	}
	s.mux.ServeHTTP(w, r)
}

// request is an authenticated request's context.
type request struct {
	sess  auth.Session
	token string
	twin  *ledger.Twin
}

// authed wraps a handler that needs a session: a live cookie, a device
// still current on the ledger (read now, verified), and on every POST the
// session's CSRF token (form field csrf or header X-CSRF-Token).
func (s *Server) authed(fn func(http.ResponseWriter, *http.Request, *request)) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		c, err := r.Cookie(SessionCookie)
		if err != nil {
			s.toSignIn(w, r)
			return
		}
		sess, err := s.sessions.Lookup(c.Value)
		if err != nil {
			s.toSignIn(w, r)
			return
		}
		if r.Method == http.MethodPost {
			tok := r.Header.Get("X-CSRF-Token")
			if tok == "" {
				tok = r.PostFormValue("csrf")
			}
			if err := sess.CheckCSRF(tok); err != nil {
				s.fail(w, r, http.StatusForbidden, err)
				return
			}
		}
		t, err := s.opts.Ledger.Twin(r.Context(), sess.Twin)
		if err != nil {
			s.fail(w, r, http.StatusBadGateway, fmt.Errorf("read twin %d from the ledger: %w", sess.Twin, err))
			return
		}
		if !t.ActiveKey(sess.Device) {
			s.sessions.End(c.Value)
			s.fail(w, r, http.StatusUnauthorized, auth.ErrDeviceRevoked)
			return
		}
		fn(w, r, &request{sess: sess, token: c.Value, twin: t})
	}
}

func (s *Server) toSignIn(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet {
		s.fail(w, r, http.StatusUnauthorized, auth.ErrNoSession)
		return
	}
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

func (s *Server) home(w http.ResponseWriter, r *http.Request) {
	if c, err := r.Cookie(SessionCookie); err == nil {
		if _, err := s.sessions.Lookup(c.Value); err == nil {
			http.Redirect(w, r, "/deployments", http.StatusSeeOther)
			return
		}
	}
	http.Redirect(w, r, "/signin", http.StatusSeeOther)
}

// eventRow is one verified event as a page shows it.
type eventRow struct {
	eventlog.Event
	At time.Time
}
