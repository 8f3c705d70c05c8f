package hub

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// startHub serves a hub on dir at 127.0.0.1:0 until the test ends and
// returns it with its HOST:PORT.
func startHub(t *testing.T, dir string, mod func(*Config)) (*Server, string) {
	t.Helper()
	cfg := Config{Dir: dir}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { stopHub(t, s) })
	return s, s.Addr().String()
}

func stopHub(t *testing.T, s *Server) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := s.Shutdown(ctx); err != nil {
		t.Errorf("shutdown: %v", err)
	}
}

func digestRef(t *testing.T, host, repo string, h v1.Hash) name.Digest {
	t.Helper()
	ref, err := name.NewDigest(host+"/"+repo+"@"+h.String(), name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	return ref
}

// sameImage fails the test unless got has want's manifest, config and
// layer bytes.
func sameImage(t *testing.T, want, got v1.Image) {
	t.Helper()
	wm, _ := want.RawManifest()
	gm, err := got.RawManifest()
	if err != nil || !bytes.Equal(wm, gm) {
		t.Fatalf("manifest differs: %v", err)
	}
	wc, _ := want.RawConfigFile()
	gc, err := got.RawConfigFile()
	if err != nil || !bytes.Equal(wc, gc) {
		t.Fatalf("config differs: %v", err)
	}
	wl, _ := want.Layers()
	gl, err := got.Layers()
	if err != nil || len(wl) != len(gl) {
		t.Fatalf("layers: %d vs %d, %v", len(wl), len(gl), err)
	}
	for i := range wl {
		if a, b := readAll(t, wl[i].Compressed), readAll(t, gl[i].Compressed); !bytes.Equal(a, b) {
			t.Fatalf("layer %d differs", i)
		}
	}
}

func readAll(t *testing.T, open func() (io.ReadCloser, error)) []byte {
	t.Helper()
	rc, err := open()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, err := io.ReadAll(rc)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestPushPullRandomImageSurvivesRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, host := startHub(t, dir, nil)
	img, err := random.Image(4096, 3)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := img.Digest()
	tag, _ := name.NewTag(host+"/test/random:v1", name.Insecure)
	if err := remote.Write(tag, img); err != nil {
		t.Fatalf("push: %v", err)
	}
	got, err := remote.Image(digestRef(t, host, "test/random", h))
	if err != nil {
		t.Fatalf("pull by digest: %v", err)
	}
	sameImage(t, img, got)

	stopHub(t, s)
	_, host2 := startHub(t, dir, nil)
	tag2, _ := name.NewTag(host2+"/test/random:v1", name.Insecure)
	for _, ref := range []name.Reference{digestRef(t, host2, "test/random", h), tag2} {
		got, err := remote.Image(ref)
		if err != nil {
			t.Fatalf("pull %s after restart: %v", ref, err)
		}
		if d, _ := got.Digest(); d != h {
			t.Fatalf("after restart %s names %s, want %s", ref, d, h)
		}
		sameImage(t, img, got)
	}
	repo, _ := name.NewRepository(host2+"/test/random", name.Insecure)
	if tags, err := remote.List(repo); err != nil || !slices.Equal(tags, []string{"v1"}) {
		t.Fatalf("tags after restart: %v %v", tags, err)
	}
	reg, _ := name.NewRegistry(host2, name.Insecure)
	if repos, err := remote.Catalog(context.Background(), reg); err != nil || !slices.Equal(repos, []string{"test/random"}) {
		t.Fatalf("catalog after restart: %v %v", repos, err)
	}
}

func TestPushPullIndex(t *testing.T) {
	t.Parallel()
	_, host := startHub(t, t.TempDir(), nil)
	idx, err := random.Index(1024, 2, 2)
	if err != nil {
		t.Fatal(err)
	}
	h, _ := idx.Digest()
	if err := remote.Push(digestRef(t, host, "multi", h), idx); err != nil {
		t.Fatalf("push index: %v", err)
	}
	got, err := remote.Index(digestRef(t, host, "multi", h))
	if err != nil {
		t.Fatalf("pull index: %v", err)
	}
	im, _ := idx.IndexManifest()
	for _, d := range im.Manifests {
		want, _ := idx.Image(d.Digest)
		child, err := got.Image(d.Digest)
		if err != nil {
			t.Fatal(err)
		}
		sameImage(t, want, child)
	}
}

func TestStoreLayoutOnDisk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, host := startHub(t, dir, nil)
	img, _ := random.Image(512, 2)
	tag, _ := name.NewTag(host+"/a/b:latest", name.Insecure)
	if err := remote.Write(tag, img); err != nil {
		t.Fatal(err)
	}
	h, _ := img.Digest()
	want := map[string]string{
		markerFile:                                   `{"format":"zerogrid-hub","version":1}` + "\n",
		"repos/a/b/_tags/latest":                     h.String() + "\n",
		"repos/a/b/_manifests/sha256/" + h.Hex:       string(types.DockerManifestSchema2) + "\n",
		"blobs/sha256/" + h.Hex:                      string(must(img.RawManifest())),
		"blobs/sha256/" + must(img.ConfigName()).Hex: string(must(img.RawConfigFile())),
	}
	for p, content := range want {
		b, err := os.ReadFile(filepath.Join(dir, p))
		if err != nil || string(b) != content {
			t.Errorf("%s: %q %v, want %q", p, b, err, content)
		}
	}
	layers, _ := img.Layers()
	for _, l := range layers {
		d, _ := l.Digest()
		if b, err := os.ReadFile(filepath.Join(dir, "blobs/sha256", d.Hex)); err != nil || !bytes.Equal(b, readAll(t, l.Compressed)) {
			t.Errorf("layer %s on disk: %v", d, err)
		}
	}
	if ents, _ := os.ReadDir(filepath.Join(dir, uploadsDir)); len(ents) != 0 {
		t.Errorf("uploads left behind: %v", ents)
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func TestOpenRefusesForeignOrNewerDirs(t *testing.T) {
	t.Parallel()
	foreign := t.TempDir()
	os.WriteFile(filepath.Join(foreign, "notes.txt"), []byte("mine"), 0o600)
	if _, err := New(Config{Dir: foreign}); !errors.Is(err, ErrNotHubDir) {
		t.Errorf("non-empty foreign dir: %v", err)
	}
	newer := t.TempDir()
	os.WriteFile(filepath.Join(newer, markerFile), []byte(`{"format":"zerogrid-hub","version":2}`), 0o600)
	if _, err := New(Config{Dir: newer}); !errors.Is(err, ErrLayoutVersion) {
		t.Errorf("version 2 store: %v", err)
	}
	fresh := filepath.Join(t.TempDir(), "new", "hub")
	if _, err := New(Config{Dir: fresh}); err != nil {
		t.Errorf("new dir: %v", err)
	}
	if _, err := New(Config{Dir: fresh}); err != nil {
		t.Errorf("reopen: %v", err)
	}
}

// TestTamperedStoreIsCaught shows what is verified where: the hub re-hashes
// a manifest before serving it; a layer altered on disk is served as is and
// the puller's digest check refuses it.
func TestTamperedStoreIsCaught(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	_, host := startHub(t, dir, nil)
	img, _ := random.Image(2048, 1)
	h, _ := img.Digest()
	ref := digestRef(t, host, "tamper", h)
	if err := remote.Write(ref, img); err != nil {
		t.Fatal(err)
	}
	layers, _ := img.Layers()
	ld, _ := layers[0].Digest()
	flipByte(t, filepath.Join(dir, "blobs/sha256", ld.Hex))
	got, err := remote.Image(ref)
	if err != nil {
		t.Fatal(err)
	}
	gl, _ := got.Layers()
	rc, _ := gl[0].Compressed()
	_, err = io.ReadAll(rc)
	rc.Close()
	if err == nil || !strings.Contains(err.Error(), ld.String()) {
		t.Fatalf("altered layer read without error: %v", err)
	}

	flipByte(t, filepath.Join(dir, "blobs/sha256", h.Hex))
	resp := do(t, http.MethodGet, "http://"+host+"/v2/tamper/manifests/"+h.String(), "", nil)
	if resp.StatusCode != http.StatusInternalServerError {
		t.Fatalf("altered manifest served: %s", resp.Status)
	}
}

func flipByte(t *testing.T, p string) {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(p, b, 0o640); err != nil {
		t.Fatal(err)
	}
}

// do sends one request and returns the response with its body read into
// a buffer (resp.Body is then a fresh reader on it).
func do(t *testing.T, method, url, contentType string, body []byte, hdr ...string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(method, url, bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	resp.Body = io.NopCloser(bytes.NewReader(b))
	return resp
}

// errCode is the first error code of an API error response.
func errCode(t *testing.T, resp *http.Response) string {
	t.Helper()
	var e struct {
		Errors []struct{ Code string } `json:"errors"`
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body = io.NopCloser(bytes.NewReader(b))
	if json.Unmarshal(b, &e) != nil || len(e.Errors) == 0 {
		return ""
	}
	return e.Errors[0].Code
}
