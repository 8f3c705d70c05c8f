package portal

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/zerogrid/zerogrid/internal/auth"
	"github.com/zerogrid/zerogrid/internal/ledger"
	"github.com/zerogrid/zerogrid/internal/spec"
)

func (s *Server) deploymentsPage(w http.ResponseWriter, r *http.Request, req *request) {
	cs, err := s.opts.Ledger.ContractsByTwin(r.Context(), req.sess.Twin)
	if err != nil {
		s.fail(w, r, http.StatusBadGateway, fmt.Errorf("read your deployments from the ledger: %w", err))
		return
	}
	slices.SortFunc(cs, func(a, b ledger.Contract) int { return int(b.ID) - int(a.ID) })
	s.render(w, r, req, http.StatusOK, "deployments.html", "My deployments", cs)
}

type deploymentData struct {
	C        *ledger.Contract
	Events   []eventRow
	Verified bool
	EventErr string
}

func (s *Server) deploymentPage(w http.ResponseWriter, r *http.Request, req *request) {
	id, err := strconv.ParseUint(r.PathValue("id"), 10, 64)
	if err != nil {
		s.fail(w, r, http.StatusNotFound, errString("no such deployment"))
		return
	}
	c, err := s.opts.Ledger.Contract(r.Context(), id)
	if err != nil || c.Owner != req.sess.Twin {
		// Another twin's contract is answered as absent: a session sees
		// its own twin's deployments only.
		s.fail(w, r, http.StatusNotFound, errString("no such deployment of yours"))
		return
	}
	d := deploymentData{C: c}
	log, err := s.opts.Ledger.ContractEvents(r.Context(), id)
	if err != nil {
		d.EventErr = err.Error()
	}
	if log != nil && log.Verified {
		d.Verified = true
		for _, e := range log.Events {
			d.Events = append(d.Events, eventRow{Event: e.Event, At: time.UnixMilli(e.Event.Time)})
		}
	}
	s.render(w, r, req, http.StatusOK, "deployment.html", fmt.Sprintf("Deployment %d", id), d)
}

type deployData struct {
	YAML   string
	Errors []string
}

func (s *Server) deployPage(w http.ResponseWriter, r *http.Request, req *request) {
	s.render(w, r, req, http.StatusOK, "deploy.html", "Deploy", deployData{})
}

// deployReview checks a pasted spec like the CLI does (errors name the
// line and field), then shows what will be signed.
func (s *Server) deployReview(w http.ResponseWriter, r *http.Request, req *request) {
	text := r.PostFormValue("spec")
	doc, err := s.parseSpec(r.Context(), text)
	if err != nil {
		s.render(w, r, req, http.StatusUnprocessableEntity, "deploy.html", "Deploy", deployData{YAML: text, Errors: strings.Split(err.Error(), "\n")})
		return
	}
	node := doc.Node
	if node == 0 {
		node = s.opts.DefaultNode
	}
	if node == 0 {
		s.render(w, r, req, http.StatusUnprocessableEntity, "deploy.html", "Deploy", deployData{YAML: text, Errors: []string{"spec.yaml: no node: add `node: ID` to the spec"}})
		return
	}
	if _, err := s.opts.Ledger.Node(r.Context(), node); err != nil {
		s.render(w, r, req, http.StatusUnprocessableEntity, "deploy.html", "Deploy", deployData{YAML: text, Errors: []string{fmt.Sprintf("node %d: %v", node, err)}})
		return
	}
	raw, err := doc.Spec.Encode()
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	nonce := make([]byte, 16)
	_, _ = rand.Read(nonce)
	d := ledger.DeploymentFor(s.opts.Ledger.Chain(), req.sess.Twin, node, nonce, 1, raw, nil)
	op := ledger.Op{ContractCreate: &ledger.ContractCreate{Node: node, Nonce: nonce, Spec: raw}}
	flow, err := s.startSigning(req, op, &d, func(_ *ledger.Op, id uint64) string { return "/deployments/" + u(id) })
	lines := []string{fmt.Sprintf("Node %d runs it for twin %d.", node, req.sess.Twin)}
	for _, wl := range doc.Spec.Workloads {
		lines = append(lines, fmt.Sprintf("%s: %s", wl.Name, wl.Type))
	}
	lines = append(lines, "Your passkey signs twice: the deployment (what the node checks), then the transaction.")
	s.review(w, r, req, flow, err, reviewData{Action: "Deploy", Lines: lines, Spec: text})
}

// updateReview checks a new spec for a live deployment and shows what the
// passkey will sign: the next generation, on the same node.
func (s *Server) updateReview(w http.ResponseWriter, r *http.Request, req *request) {
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
	text := r.PostFormValue("spec")
	doc, err := s.parseSpec(r.Context(), text)
	if err == nil && doc.Node != 0 && doc.Node != c.Node {
		err = fmt.Errorf("spec.yaml: node: %d, but deployment %d runs on node %d: an update stays on its node", doc.Node, id, c.Node)
	}
	if err != nil {
		s.fail(w, r, http.StatusUnprocessableEntity, err)
		return
	}
	raw, err := doc.Spec.Encode()
	if err != nil {
		s.fail(w, r, http.StatusBadRequest, err)
		return
	}
	gen := c.Generation + 1
	d := ledger.DeploymentFor(s.opts.Ledger.Chain(), c.Owner, c.Node, c.Nonce, gen, raw, nil)
	op := ledger.Op{ContractUpdate: &ledger.ContractUpdate{Contract: id, Generation: gen, Spec: raw}}
	flow, err := s.startSigning(req, op, &d, func(*ledger.Op, uint64) string { return "/deployments/" + u(id) })
	lines := []string{fmt.Sprintf("Deployment %d on node %d goes to generation %d; workloads that did not change are left alone.", id, c.Node, gen),
		"Your passkey signs twice: the deployment, then the transaction."}
	s.review(w, r, req, flow, err, reviewData{Action: fmt.Sprintf("Update deployment %d", id), Lines: lines, Spec: text})
}

// parseSpec compiles YAML as `zgrid deploy` does. Secrets cannot come from
// the portal server's environment or files, and are refused: sealing them
// needs the node's key in the browser (docs/access.md).
func (s *Server) parseSpec(ctx context.Context, text string) (*spec.Document, error) {
	if len(text) > spec.MaxSpecBytes {
		return nil, fmt.Errorf("spec.yaml is %d bytes, limit %d", len(text), spec.MaxSpecBytes)
	}
	noSecrets := errors.New("secrets are not taken by the portal yet: deploy specs with secrets with `zgrid deploy`")
	p := spec.YAMLParser{
		LookupEnv: func(string) (string, bool) { return "", false },
		ReadFile:  func(string) ([]byte, error) { return nil, noSecrets },
		ResolveImage: func(ref string) (string, error) {
			if s.opts.ResolveImage == nil {
				return "", fmt.Errorf("image %s is named by a tag: pin it by digest (REPO@sha256:…)", ref)
			}
			return s.opts.ResolveImage(ctx, ref)
		},
	}
	doc, err := p.Parse("spec.yaml", []byte(text))
	if err != nil {
		return nil, err
	}
	if len(doc.Secrets) > 0 {
		return nil, noSecrets
	}
	return doc, nil
}

type devicesData struct {
	Keys     []ledger.KeyEntry
	Current  string
	Sessions []auth.Session
	SessID   string
}

func (s *Server) devicesPage(w http.ResponseWriter, r *http.Request, req *request) {
	d := devicesData{Keys: req.twin.Keys, Current: req.sess.Device.String(), Sessions: s.sessions.List(req.sess.Twin), SessID: req.sess.ID}
	s.render(w, r, req, http.StatusOK, "devices.html", "Devices and sessions", d)
}

func (s *Server) revokeSession(w http.ResponseWriter, r *http.Request, req *request) {
	if !s.sessions.Revoke(req.sess.Twin, r.PostFormValue("id")) {
		s.fail(w, r, http.StatusNotFound, errString("no such session of yours"))
		return
	}
	http.Redirect(w, r, "/devices", http.StatusSeeOther)
}
