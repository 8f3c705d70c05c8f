package hub

import (
	"fmt"
	"net/http"
	"strconv"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// serveUploadStart answers POST /v2/<name>/blobs/uploads/: a monolithic
// upload when ?digest= is given, a cross-repository mount when ?mount=
// names a stored blob (all blobs are shared, so that is an existence
// check), else a new upload session.
func (s *Server) serveUploadStart(w http.ResponseWriter, r *http.Request, rt route) error {
	if r.Method != http.MethodPost {
		return errMethod(r.Method)
	}
	q := r.URL.Query()
	if d := q.Get("digest"); d != "" {
		h, aerr := parseDigest(d)
		if aerr != nil {
			return aerr
		}
		if err := s.blobs.Put(r.Context(), rt.repo, h, r.Body); err != nil {
			return err
		}
		s.blobCreated(w, rt.repo, h)
		return nil
	}
	if m := q.Get("mount"); m != "" {
		if h, aerr := parseDigest(m); aerr == nil {
			if _, err := s.blobs.Stat(r.Context(), rt.repo, h); err == nil {
				s.blobCreated(w, rt.repo, h)
				return nil
			}
		}
	}
	sess, err := s.uploads.start(rt.repo)
	if err != nil {
		return err
	}
	s.uploadAccepted(w, sess, http.StatusAccepted)
	return nil
}

// serveUpload answers the requests on one session: PATCH appends a chunk,
// PUT appends the last one and commits under ?digest=, GET reports the
// progress, DELETE cancels.
func (s *Server) serveUpload(w http.ResponseWriter, r *http.Request, rt route) error {
	switch r.Method {
	case http.MethodPatch, http.MethodPut, http.MethodGet, http.MethodDelete:
	default:
		return errMethod(r.Method)
	}
	sess, aerr := s.uploads.lock(rt.upload, rt.repo)
	if aerr != nil {
		return aerr
	}
	defer sess.mu.Unlock()
	switch r.Method {
	case http.MethodPatch:
		return s.patchUpload(w, r, sess)
	case http.MethodPut:
		return s.putUpload(w, r, sess)
	case http.MethodDelete:
		s.uploads.end(sess)
		w.WriteHeader(http.StatusNoContent)
		return nil
	}
	s.uploadAccepted(w, sess, http.StatusNoContent)
	return nil
}

func (s *Server) patchUpload(w http.ResponseWriter, r *http.Request, sess *session) error {
	if cr := r.Header.Get("Content-Range"); cr != "" {
		start, _, ok := contentRange(cr)
		if !ok || start != sess.w.size {
			w.Header().Set("Range", uploadRange(sess.w.size))
			return &apiError{http.StatusRequestedRangeNotSatisfiable, "BLOB_UPLOAD_INVALID",
				fmt.Sprintf("Content-Range %q does not continue the %d bytes received", cr, sess.w.size)}
		}
	}
	if err := s.uploads.appendBody(sess, r.Body); err != nil {
		return err
	}
	s.uploadAccepted(w, sess, http.StatusAccepted)
	return nil
}

func (s *Server) putUpload(w http.ResponseWriter, r *http.Request, sess *session) error {
	d := r.URL.Query().Get("digest")
	if d == "" {
		return errDigestInvalid("PUT that completes an upload needs ?digest=sha256:…")
	}
	h, aerr := parseDigest(d)
	if aerr != nil {
		return aerr
	}
	if err := s.uploads.finish(sess, r.Body, h); err != nil {
		return err
	}
	s.blobCreated(w, sess.repo, h)
	return nil
}

func (s *Server) blobCreated(w http.ResponseWriter, repo string, h v1.Hash) {
	w.Header().Set("Location", "/v2/"+repo+"/blobs/"+h.String())
	w.Header().Set("Docker-Content-Digest", h.String())
	w.WriteHeader(http.StatusCreated)
}

func (s *Server) uploadAccepted(w http.ResponseWriter, sess *session, status int) {
	w.Header().Set("Location", "/v2/"+sess.repo+"/blobs/uploads/"+sess.id)
	w.Header().Set("Range", uploadRange(sess.w.size))
	w.Header().Set("Docker-Upload-UUID", sess.id)
	w.Header().Set("Content-Length", "0")
	w.WriteHeader(status)
}

// uploadRange is the Range header of an upload holding size bytes.
func uploadRange(size int64) string {
	if size == 0 {
		return "0-0"
	}
	return "0-" + strconv.FormatInt(size-1, 10)
}
