package container

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"os"
	"runtime"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"

	"github.com/zerogrid/zerogrid/internal/workload"
)

func newPuller(dir string) *puller {
	return &puller{
		blobs: blobStore{dir: dir}, maxImage: 1 << 30, insecure: map[string]bool{},
		base: guard{inner: http.DefaultTransport}, log: slog.New(slog.NewTextHandler(io.Discard, nil)),
	}
}

func tinyImage(t *testing.T, body string) v1.Image {
	return testImage(t, v1.Config{Cmd: []string{"/hello"}}, reg("hello", body, 0o755))
}

func TestPullVerifiesAndCaches(t *testing.T) {
	t.Parallel()
	r := newTestRegistry(t)
	ref := r.push(t, "app", tinyImage(t, "v1"))
	dir := t.TempDir()
	img, err := newPuller(dir).pull(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasSuffix(ref, img.Digest.String()) || len(img.Manifest.Layers) != 1 || img.Config.Config.Cmd[0] != "/hello" {
		t.Fatalf("pulled %+v", img)
	}
	before := r.requests.Load()
	if _, err := newPuller(dir).pull(context.Background(), ref); err != nil { // as after a restart
		t.Fatal(err)
	}
	if n := r.requests.Load() - before; n != 0 {
		t.Errorf("pulling a cached image made %d registry requests, want 0", n)
	}
}

func TestPullRefusesWrongDigest(t *testing.T) {
	t.Parallel()
	r := newTestRegistry(t)
	good := tinyImage(t, "the image the owner pinned")
	evil := tinyImage(t, "what the registry serves instead")
	goodRef := r.push(t, "app", good)
	r.push(t, "app", evil)
	want, _ := good.Digest()
	have, _ := evil.Digest()
	r.serveInstead("app", want, have)

	dir := t.TempDir()
	_, err := newPuller(dir).pull(context.Background(), goodRef)
	if !workload.IsPermanent(err) || !errors.Is(err, ErrDigestMismatch) {
		t.Fatalf("pull of a substituted manifest = %v, want a permanent ErrDigestMismatch", err)
	}
	reason := workload.Reason(err)
	if !strings.Contains(reason, want.String()) || !strings.Contains(reason, have.String()) {
		t.Errorf("reason %q does not name both digests", reason)
	}
	if (blobStore{dir: dir}).has(want) || (blobStore{dir: dir}).has(have) {
		t.Error("the substituted manifest was cached")
	}
}

func TestPullMissingImageIsRetryable(t *testing.T) {
	t.Parallel()
	r := newTestRegistry(t)
	img := tinyImage(t, "never pushed")
	d, _ := img.Digest()
	_, err := newPuller(t.TempDir()).pull(context.Background(), r.host+"/app@"+d.String())
	if err == nil || workload.IsPermanent(err) || !errors.Is(err, ErrRegistry) {
		t.Fatalf("pull of an image not pushed yet = %v, want a retryable ErrRegistry", err)
	}
}

func TestPullPicksPlatformFromIndex(t *testing.T) {
	t.Parallel()
	r := newTestRegistry(t)
	mine, other := tinyImage(t, "mine"), tinyImage(t, "other arch")
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: other, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "s390x"}}},
		mutate.IndexAddendum{Add: mine, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: runtime.GOARCH}}},
	)
	ref := r.pushIndex(t, "multi", idx)
	img, err := newPuller(t.TempDir()).pull(context.Background(), ref)
	if err != nil {
		t.Fatal(err)
	}
	ml, _ := mine.Layers()
	d, _ := ml[0].Digest()
	if img.Manifest.Layers[0].Digest != d {
		t.Errorf("pulled layer %s, want the linux/%s one %s", img.Manifest.Layers[0].Digest, runtime.GOARCH, d)
	}
}

func TestPlainHTTPOnlyToLoopbackAndAllowed(t *testing.T) {
	t.Parallel()
	g := guard{insecure: map[string]bool{"hub.local:5000": true}}
	for host, want := range map[string]bool{
		"127.0.0.1:5000": true, "[::1]:80": true, "localhost:5000": true, "hub.local:5000": true,
		"10.0.0.1:5000": false, "192.168.1.2:443": false, "registry.example:5000": false, "hub.local:5001": false,
	} {
		if got := g.allowHTTP(host); got != want {
			t.Errorf("allowHTTP(%s) = %v, want %v", host, got, want)
		}
	}
}

func TestBlobStoreRejectsAndRepairs(t *testing.T) {
	t.Parallel()
	s := blobStore{dir: t.TempDir()}
	d := sha256Hash([]byte("right"))
	if err := s.write(d, strings.NewReader("wrong"), 100); !errors.Is(err, ErrDigestMismatch) || s.has(d) {
		t.Fatalf("write of wrong content = %v (cached %v)", err, s.has(d))
	}
	if err := s.write(d, strings.NewReader("right"), 3); err == nil || s.has(d) {
		t.Fatalf("write above the limit = %v", err)
	}
	if err := s.write(d, strings.NewReader("right"), 100); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(s.path(d), []byte("rot"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, ok, err := s.read(d, 100); ok || err != nil || s.has(d) {
		t.Errorf("a damaged blob was served (ok %v, err %v) or kept", ok, err)
	}
}
