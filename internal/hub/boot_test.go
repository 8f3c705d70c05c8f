package hub

import (
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestBootFiles(t *testing.T) {
	t.Parallel()
	boot, outside := t.TempDir(), t.TempDir()
	os.WriteFile(filepath.Join(boot, "boot.ipxe"), []byte("#!ipxe\n"), 0o644)
	os.WriteFile(filepath.Join(boot, ".hidden"), []byte("no"), 0o644)
	os.WriteFile(filepath.Join(outside, "secret"), []byte("secret"), 0o644)
	os.Symlink(filepath.Join(outside, "secret"), filepath.Join(boot, "escape"))
	os.Mkdir(filepath.Join(boot, "sub"), 0o755)
	srv, err := New(Config{Dir: t.TempDir(), BootDir: boot})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(srv.Handler())
	t.Cleanup(ts.Close)
	for _, tc := range []struct {
		method, path string
		status       int
		body         string
	}{
		{"GET", "/boot/boot.ipxe", 200, "#!ipxe\n"},
		{"HEAD", "/boot/boot.ipxe", 200, ""},
		{"GET", "/boot/.hidden", 404, ""},
		{"GET", "/boot/escape", 404, ""},
		{"GET", "/boot/sub", 404, ""},
		{"GET", "/boot/../secret", 404, ""},
		{"GET", "/boot/%2e%2e%2fsecret", 404, ""},
		{"GET", "/boot/missing", 404, ""},
		{"PUT", "/boot/boot.ipxe", 405, ""},
		{"GET", "/v2/", 200, ""},
	} {
		req, _ := http.NewRequest(tc.method, ts.URL+tc.path, strings.NewReader("x"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != tc.status {
			t.Errorf("%s %s: %d, want %d", tc.method, tc.path, resp.StatusCode, tc.status)
		}
		if tc.body != "" && string(body) != tc.body {
			t.Errorf("%s %s: body %q, want %q", tc.method, tc.path, body, tc.body)
		}
		if strings.Contains(string(body), "secret") {
			t.Errorf("%s %s: leaked a file outside the boot directory", tc.method, tc.path)
		}
	}
}

func TestNoBootDirNoBootFiles(t *testing.T) {
	t.Parallel()
	srv, err := New(Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	srv.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/boot/boot.ipxe", nil))
	if rec.Code != 404 {
		t.Fatalf("GET /boot/ without a boot dir: %d", rec.Code)
	}
}
