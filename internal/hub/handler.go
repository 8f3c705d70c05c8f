package hub

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// serveHTTP is the hub's handler: it validates every path, serves
// manifests, tags, the catalog and uploads itself, and hands blob reads and
// the version check to pkg/registry.
func (s *Server) serveHTTP(w http.ResponseWriter, r *http.Request) {
	sw := &statusWriter{ResponseWriter: w, status: http.StatusOK}
	start := s.now()
	s.route(sw, r)
	s.log.Debug("request", "method", r.Method, "path", r.URL.Path, "status", sw.status,
		"remote", r.RemoteAddr, "duration", s.now().Sub(start))
}

func (s *Server) route(w http.ResponseWriter, r *http.Request) {
	if s.cfg.Release != nil && strings.HasPrefix(r.URL.Path, "/tuf/") {
		s.cfg.Release.ServeHTTP(w, r)
		return
	}
	if s.boot != nil && strings.HasPrefix(r.URL.Path, "/boot/") {
		s.boot.ServeHTTP(w, r)
		return
	}
	rt, aerr := parseRoute(r.URL.Path)
	if aerr != nil {
		s.fail(w, r, aerr)
		return
	}
	var err error
	switch rt.kind {
	case routeBase:
		s.registry.ServeHTTP(w, r)
	case routeCatalog:
		err = s.serveCatalog(w, r)
	case routeTags:
		err = s.serveTags(w, r, rt)
	case routeManifest:
		err = s.serveManifest(w, r, rt)
	case routeBlob:
		err = s.serveBlob(w, r)
	case routeUploadStart:
		err = s.serveUploadStart(w, r, rt)
	case routeUpload:
		err = s.serveUpload(w, r, rt)
	}
	if err != nil {
		s.fail(w, r, err)
	}
}

// fail answers with err: an API error as itself, anything else as an
// internal error whose detail goes to the log only.
func (s *Server) fail(w http.ResponseWriter, r *http.Request, err error) {
	aerr := apiErrorOf(err)
	switch {
	case aerr == nil:
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
		aerr = errInternal()
	case aerr.status == http.StatusNotFound:
		// Clients probe for what exists before pushing: not news.
		s.log.Debug("not found", "method", r.Method, "path", r.URL.Path, "code", aerr.code)
	default:
		s.log.Info("request refused", "method", r.Method, "path", r.URL.Path, "remote", r.RemoteAddr, "code", aerr.code, "reason", aerr.msg)
	}
	writeError(w, aerr)
}

// apiErrorOf maps err to the API's error, or nil for an internal error.
func apiErrorOf(err error) *apiError {
	var aerr *apiError
	var mbe *http.MaxBytesError
	switch {
	case errors.As(err, &aerr):
		return aerr
	case errors.As(err, &mbe):
		return errTooLarge(fmt.Sprintf("request body larger than %d bytes", mbe.Limit))
	case errors.Is(err, ErrDigestMismatch):
		return errDigestInvalid(err.Error())
	case errors.Is(err, ErrTooLarge):
		return errTooLarge(err.Error())
	case errors.Is(err, ErrTooManyUploads):
		return errBusy()
	}
	return nil
}

func writeError(w http.ResponseWriter, e *apiError) {
	type entry struct {
		Code    string `json:"code"`
		Message string `json:"message"`
	}
	body, _ := json.Marshal(struct {
		Errors []entry `json:"errors"`
	}{[]entry{{e.code, e.msg}}})
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(e.status)
	w.Write(body)
}

func (s *Server) serveBlob(w http.ResponseWriter, r *http.Request) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		s.registry.ServeHTTP(w, r)
		return nil
	case http.MethodDelete:
		return errUnsupported("the hub never deletes: what a digest names stays available")
	}
	return errMethod(r.Method)
}

func (s *Server) serveManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	switch r.Method {
	case http.MethodGet, http.MethodHead:
		body, h, mt, err := s.manifests.get(rt)
		if err != nil {
			return err
		}
		w.Header().Set("Content-Type", string(mt))
		w.Header().Set("Docker-Content-Digest", h.String())
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		if r.Method == http.MethodGet {
			w.Write(body)
		}
		return nil
	case http.MethodPut:
		return s.putManifest(w, r, rt)
	case http.MethodDelete:
		return errUnsupported("the hub never deletes manifests or tags: push a new tag instead")
	}
	return errMethod(r.Method)
}

func (s *Server) putManifest(w http.ResponseWriter, r *http.Request, rt route) error {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, s.manifests.max))
	if err != nil {
		return err
	}
	h, err := s.manifests.put(rt.repo, rt.tag, rt.digest, r.Header.Get("Content-Type"), body)
	if err != nil {
		return err
	}
	s.log.Info("manifest pushed", "repo", rt.repo, "digest", h, "tag", rt.tag, "remote", r.RemoteAddr)
	w.Header().Set("Location", "/v2/"+rt.repo+"/manifests/"+h.String())
	w.Header().Set("Docker-Content-Digest", h.String())
	w.WriteHeader(http.StatusCreated)
	return nil
}

func (s *Server) serveTags(w http.ResponseWriter, r *http.Request, rt route) error {
	if r.Method != http.MethodGet {
		return errMethod(r.Method)
	}
	tags, err := s.manifests.tags(rt.repo)
	if err != nil {
		return err
	}
	page, next, err := paginate(tags, r.URL.Query())
	if err != nil {
		return err
	}
	writeList(w, "/v2/"+rt.repo+"/tags/list", next, struct {
		Name string   `json:"name"`
		Tags []string `json:"tags"`
	}{rt.repo, page})
	return nil
}

func (s *Server) serveCatalog(w http.ResponseWriter, r *http.Request) error {
	if r.Method != http.MethodGet {
		return errMethod(r.Method)
	}
	repos, err := s.manifests.repoNames()
	if err != nil {
		return err
	}
	page, next, err := paginate(repos, r.URL.Query())
	if err != nil {
		return err
	}
	writeList(w, "/v2/_catalog", next, struct {
		Repositories []string `json:"repositories"`
	}{page})
	return nil
}

// paginate applies the "n" and "last" parameters of the specification to a
// sorted list. next, if not empty, is the query of the following page.
func paginate(all []string, q url.Values) (page []string, next url.Values, err error) {
	if last := q.Get("last"); last != "" {
		i, _ := slices.BinarySearch(all, last)
		if i < len(all) && all[i] == last {
			i++
		}
		all = all[i:]
	}
	if !q.Has("n") {
		return all, nil, nil
	}
	n, perr := strconv.Atoi(q.Get("n"))
	if perr != nil || n < 0 {
		return nil, nil, &apiError{http.StatusBadRequest, "PAGINATION_NUMBER_INVALID", "n must be a number ≥ 0"}
	}
	if n >= len(all) {
		return all, nil, nil
	}
	page = all[:n]
	if n > 0 {
		next = url.Values{"n": {strconv.Itoa(n)}, "last": {page[n-1]}}
	}
	return page, next, nil
}

// writeList answers 200 with v as JSON and, when there is a next page, a
// Link header to it.
func writeList(w http.ResponseWriter, path string, next url.Values, v any) {
	body, _ := json.Marshal(v)
	if next != nil {
		w.Header().Set("Link", fmt.Sprintf("<%s?%s>; rel=\"next\"", path, next.Encode()))
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.Write(body)
}

// statusWriter records the status a handler answered, for the log.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	w.status = code
	w.ResponseWriter.WriteHeader(code)
}

// Unwrap lets http.ResponseController reach the connection.
func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) now() time.Time { return s.cfg.Now() }

// ReadFrom keeps io.Copy into the response on the connection's fast path.
func (w *statusWriter) ReadFrom(r io.Reader) (int64, error) { return io.Copy(w.ResponseWriter, r) }
