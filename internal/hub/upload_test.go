package hub

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return "sha256:" + hex.EncodeToString(s[:])
}

// startUpload opens a session and returns its absolute URL.
func startUpload(t *testing.T, base, repo string) string {
	t.Helper()
	resp := do(t, http.MethodPost, base+"/v2/"+repo+"/blobs/uploads/", "", nil)
	if resp.StatusCode != http.StatusAccepted {
		t.Fatalf("start upload: %s %s", resp.Status, errCode(t, resp))
	}
	return base + resp.Header.Get("Location")
}

// TestBlobDigestMismatchRefused pushes bytes under a digest they do not
// have, in each of the protocol's ways, and checks nothing is stored; the
// same uploads with the right digest are the control.
func TestBlobDigestMismatchRefused(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, host := startHub(t, dir, nil)
	base := "http://" + host
	upload := map[string]func(t *testing.T, data []byte, digest string) *http.Response{
		"monolithic POST": func(t *testing.T, data []byte, digest string) *http.Response {
			return do(t, http.MethodPost, base+"/v2/r/blobs/uploads/?digest="+digest, "application/octet-stream", data)
		},
		"POST PATCH PUT": func(t *testing.T, data []byte, digest string) *http.Response {
			loc := startUpload(t, base, "r")
			if resp := do(t, http.MethodPatch, loc, "application/octet-stream", data); resp.StatusCode != http.StatusAccepted {
				t.Fatalf("patch: %s", resp.Status)
			}
			return do(t, http.MethodPut, loc+"?digest="+digest, "", nil)
		},
		"POST PUT": func(t *testing.T, data []byte, digest string) *http.Response {
			return do(t, http.MethodPut, startUpload(t, base, "r")+"?digest="+digest, "application/octet-stream", data)
		},
	}
	for how, up := range upload {
		t.Run(how, func(t *testing.T) {
			data := []byte("payload of " + how)
			claimed := sha([]byte("something else " + how))
			resp := up(t, data, claimed)
			if resp.StatusCode != http.StatusBadRequest || errCode(t, resp) != "DIGEST_INVALID" {
				t.Fatalf("mismatch accepted: %s %s", resp.Status, errCode(t, resp))
			}
			for _, d := range []string{claimed, sha(data)} {
				if resp := do(t, http.MethodHead, base+"/v2/r/blobs/"+d, "", nil); resp.StatusCode != http.StatusNotFound {
					t.Fatalf("HEAD %s after refused upload: %s", d, resp.Status)
				}
			}
			resp = up(t, data, sha(data))
			if resp.StatusCode != http.StatusCreated || resp.Header.Get("Docker-Content-Digest") != sha(data) {
				t.Fatalf("right digest refused: %s %s", resp.Status, errCode(t, resp))
			}
			got := do(t, http.MethodGet, base+"/v2/other/blobs/"+sha(data), "", nil)
			if b, _ := io.ReadAll(got.Body); got.StatusCode != http.StatusOK || !bytes.Equal(b, data) {
				t.Fatalf("GET blob through another repository: %s %q", got.Status, b)
			}
		})
	}
}

func TestBlobSizeLimit(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, host := startHub(t, dir, func(c *Config) { c.MaxBlobBytes = 1000 })
	base := "http://" + host
	big := bytes.Repeat([]byte{'x'}, 1001)
	resp := do(t, http.MethodPost, base+"/v2/r/blobs/uploads/?digest="+sha(big), "", big)
	if resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("monolithic oversized blob: %s", resp.Status)
	}
	// Two chunks, each under the limit, together over it.
	loc := startUpload(t, base, "r")
	if resp := do(t, http.MethodPatch, loc, "", big[:600], "Content-Range", "0-599"); resp.StatusCode != http.StatusAccepted {
		t.Fatalf("first chunk: %s", resp.Status)
	}
	if resp := do(t, http.MethodPatch, loc, "", big[600:], "Content-Range", "600-1000"); resp.StatusCode != http.StatusRequestEntityTooLarge {
		t.Fatalf("second chunk past the limit: %s", resp.Status)
	}
	if resp := do(t, http.MethodPut, loc+"?digest="+sha(big), "", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("session survived an oversized chunk: %s", resp.Status)
	}
	exact := big[:1000]
	if resp := do(t, http.MethodPut, startUpload(t, base, "r")+"?digest="+sha(exact), "", exact); resp.StatusCode != http.StatusCreated {
		t.Fatalf("blob at the limit: %s %s", resp.Status, errCode(t, resp))
	}
	assertNoUploads(t, dir)
}

func assertNoUploads(t *testing.T, dir string) {
	t.Helper()
	if ents, _ := os.ReadDir(filepath.Join(dir, uploadsDir)); len(ents) != 0 {
		t.Errorf("files left in uploads/: %v", ents)
	}
}

func TestChunkedUploadSession(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, host := startHub(t, dir, nil)
	base := "http://" + host
	data := []byte("0123456789abcdefghij")
	loc := startUpload(t, base, "r/s")
	steps := []struct {
		method, url, contentRange string
		body                      []byte
		status                    int
		rangeHdr                  string
	}{
		{http.MethodPatch, loc, "0-9", data[:10], http.StatusAccepted, "0-9"},
		{http.MethodPatch, loc, "5-9", data[5:10], http.StatusRequestedRangeNotSatisfiable, "0-9"},
		{http.MethodPatch, strings.Replace(loc, "/r/s/", "/r/t/", 1), "10-19", data[10:], http.StatusNotFound, ""},
		{http.MethodGet, loc, "", nil, http.StatusNoContent, "0-9"},
		{http.MethodPatch, loc, "10-19", data[10:], http.StatusAccepted, "0-19"},
		{http.MethodPut, loc + "?digest=" + sha(data), "", nil, http.StatusCreated, ""},
		{http.MethodPatch, loc, "", data, http.StatusNotFound, ""},
	}
	for i, st := range steps {
		var hdr []string
		if st.contentRange != "" {
			hdr = []string{"Content-Range", st.contentRange}
		}
		resp := do(t, st.method, st.url, "", st.body, hdr...)
		if resp.StatusCode != st.status || resp.Header.Get("Range") != st.rangeHdr {
			t.Fatalf("step %d %s: %s Range %q, want %d Range %q", i, st.method, resp.Status, resp.Header.Get("Range"), st.status, st.rangeHdr)
		}
	}
	cancel := startUpload(t, base, "r/s")
	do(t, http.MethodPatch, cancel, "", data)
	if resp := do(t, http.MethodDelete, cancel, "", nil); resp.StatusCode != http.StatusNoContent {
		t.Fatalf("cancel: %s", resp.Status)
	}
	if resp := do(t, http.MethodPut, cancel+"?digest="+sha(data), "", nil); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("PUT after cancel: %s", resp.Status)
	}
	assertNoUploads(t, dir)
}

// fakeClock is a clock the test moves.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

func TestUploadSessionsAreBounded(t *testing.T) {
	t.Parallel()
	clock := &fakeClock{now: time.Unix(1_700_000_000, 0)}
	dir := t.TempDir()
	_, host := startHub(t, dir, func(c *Config) {
		c.MaxUploads, c.UploadIdle, c.Now = 2, time.Minute, clock.Now
	})
	base := "http://" + host
	first := startUpload(t, base, "r")
	clock.advance(50 * time.Second)
	second := startUpload(t, base, "r")
	if resp := do(t, http.MethodPost, base+"/v2/r/blobs/uploads/", "", nil); resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("third session: %s", resp.Status)
	}
	clock.advance(20 * time.Second) // first is now idle for 70 s, second for 20 s
	third := startUpload(t, base, "r")
	if resp := do(t, http.MethodPatch, first, "", []byte("x")); resp.StatusCode != http.StatusNotFound {
		t.Fatalf("expired session still open: %s", resp.Status)
	}
	for _, loc := range []string{second, third} {
		if resp := do(t, http.MethodPatch, loc, "", []byte("x")); resp.StatusCode != http.StatusAccepted {
			t.Fatalf("live session %s: %s", loc, resp.Status)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, uploadsDir)); len(ents) != 2 {
		t.Fatalf("uploads/ holds %d files, want the 2 live sessions", len(ents))
	}
}
