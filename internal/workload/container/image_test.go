package container

import (
	"archive/tar"
	"bytes"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// testRegistry is an in-process OCI registry on 127.0.0.1 that counts
// requests and can be told to serve one manifest in place of another, as
// a compromised registry would.
type testRegistry struct {
	host     string
	requests atomic.Int64
	mu       sync.Mutex
	swap     map[string]string // requested path -> path served
}

func newTestRegistry(t *testing.T) *testRegistry {
	t.Helper()
	r := &testRegistry{swap: map[string]string{}}
	h := registry.New(registry.Logger(log.New(io.Discard, "", 0)))
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		r.requests.Add(1)
		r.mu.Lock()
		if to, ok := r.swap[req.URL.Path]; ok {
			req.URL.Path = to
		}
		r.mu.Unlock()
		h.ServeHTTP(w, req)
	}))
	t.Cleanup(srv.Close)
	r.host = strings.TrimPrefix(srv.URL, "http://")
	return r
}

// push uploads img as repo and returns its pinned reference.
func (r *testRegistry) push(t *testing.T, repo string, img v1.Image) string {
	t.Helper()
	d, err := img.Digest()
	if err != nil {
		t.Fatal(err)
	}
	ref := r.host + "/" + repo + "@" + d.String()
	tag, err := name.ParseReference(r.host + "/" + repo + ":latest")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.Write(tag, img); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
	return ref
}

// serveInstead makes the registry answer requests for repo@want with the
// manifest of repo@have.
func (r *testRegistry) serveInstead(repo string, want, have v1.Hash) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.swap["/v2/"+repo+"/manifests/"+want.String()] = "/v2/" + repo + "/manifests/" + have.String()
}

// tarEntry is one file of a test layer.
type tarEntry struct {
	hdr  tar.Header
	body string
}

func reg(name, body string, mode int64) tarEntry {
	return tarEntry{hdr: tar.Header{Name: name, Typeflag: tar.TypeReg, Mode: mode, Size: int64(len(body))}, body: body}
}

func layerTar(t testing.TB, entries ...tarEntry) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := e.hdr
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		if _, err := io.WriteString(tw, e.body); err != nil {
			t.Fatal(err)
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// testImage is a one-layer image made of entries, with cfg.
func testImage(t *testing.T, cfg v1.Config, entries ...tarEntry) v1.Image {
	t.Helper()
	b := layerTar(t, entries...)
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, err := mutate.AppendLayers(empty.Image, layer)
	if err != nil {
		t.Fatal(err)
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config = "linux", runtime.GOARCH, cfg
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

var (
	serverOnce sync.Once
	serverBin  []byte
	serverErr  error
)

// serverImage is the HTTP server of testdata/httpserver, built static,
// as a one-layer image that listens on PORT 8080.
func serverImage(t *testing.T) v1.Image {
	t.Helper()
	serverOnce.Do(func() {
		dir, err := os.MkdirTemp("", "zg-httpserver-")
		if err != nil {
			serverErr = err
			return
		}
		defer os.RemoveAll(dir)
		out := filepath.Join(dir, "server")
		cmd := exec.Command("go", "build", "-trimpath", "-o", out, "./testdata/httpserver")
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if b, err := cmd.CombinedOutput(); err != nil {
			serverErr = err
			serverBin = b
			return
		}
		serverBin, serverErr = os.ReadFile(out)
	})
	if serverErr != nil {
		t.Fatalf("build the test server: %v\n%s", serverErr, serverBin)
	}
	return testImage(t, v1.Config{
		Entrypoint: []string{"/server"},
		Env:        []string{"PORT=8080", "DATA=/data", "GREETING=image-default"},
	}, reg("server", string(serverBin), 0o755))
}

// pushIndex uploads a multi-platform index as repo.
func (r *testRegistry) pushIndex(t *testing.T, repo string, idx v1.ImageIndex) string {
	t.Helper()
	d, err := idx.Digest()
	if err != nil {
		t.Fatal(err)
	}
	tag, err := name.ParseReference(r.host + "/" + repo + ":latest")
	if err != nil {
		t.Fatal(err)
	}
	if err := remote.WriteIndex(tag, idx); err != nil {
		t.Fatal(err)
	}
	return r.host + "/" + repo + "@" + d.String()
}
