package gateway

import (
	"bytes"
	"net/http"
)

// memResponse is a minimal http.ResponseWriter for scraping metrics.
type memResponse struct {
	header http.Header
	code   int
	body   bytes.Buffer
}

func (r *memResponse) Header() http.Header         { return r.header }
func (r *memResponse) WriteHeader(code int)        { r.code = code }
func (r *memResponse) Write(p []byte) (int, error) { return r.body.Write(p) }
