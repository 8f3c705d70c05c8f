package hub

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// TestPinResolvesTagsInTheHub: REPO:TAG resolves to the hub's pinned
// reference of what the tag names now; a re-pushed tag resolves to the new
// image; unknown tags and refs that are not REPO:TAG are refused.
func TestPinResolvesTagsInTheHub(t *testing.T) {
	t.Parallel()
	_, host := startHub(t, t.TempDir(), nil)
	c, err := NewClient("http://"+host, ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for round := range 2 {
		img, err := random.Image(64, 1)
		if err != nil {
			t.Fatal(err)
		}
		pushed, err := c.Push(ctx, "team/hello", "latest", img)
		if err != nil {
			t.Fatal(err)
		}
		got, err := c.Pin(ctx, "team/hello:latest")
		if err != nil || got != pushed.Reference || !strings.HasPrefix(got, host+"/team/hello@sha256:") {
			t.Fatalf("round %d: Pin = %q, %v; want %q", round, got, err, pushed.Reference)
		}
	}
	if _, err := c.Pin(ctx, "team/hello:v2"); !errors.Is(err, ErrTagUnknown) || !strings.Contains(err.Error(), "zgrid image push") {
		t.Errorf("unknown tag: %v", err)
	}
	for _, ref := range []string{
		"hello", "hello@sha256:" + strings.Repeat("a", 64), "127.0.0.1:5000/hello:latest",
		"registry.example.com/hello:1", "localhost/hello:latest", "Hello:latest", "hello:.x", "hello:", "team/hello:a/b",
	} {
		if _, err := c.Pin(ctx, ref); !errors.Is(err, ErrBadRef) && !errors.Is(err, ErrBadRepo) && !errors.Is(err, ErrBadTag) {
			t.Errorf("Pin(%q): %v, want a bad-reference error", ref, err)
		}
	}
}

// TestPinHashesWhatItReceived: a hub whose Docker-Content-Digest header
// names other content does not decide the pinned digest; the bytes it
// sent do.
func TestPinHashesWhatItReceived(t *testing.T) {
	t.Parallel()
	manifest := []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",` +
		`"config":{"mediaType":"application/vnd.oci.image.config.v1+json","size":2,"digest":"sha256:` + strings.Repeat("1", 64) + `"},"layers":[]}`)
	want, _, _ := v1.SHA256(strings.NewReader(string(manifest)))
	liar := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			return
		}
		w.Header().Set("Content-Type", string(types.OCIManifestSchema1))
		w.Header().Set("Docker-Content-Digest", "sha256:"+strings.Repeat("0", 64))
		w.Write(manifest)
	}))
	defer liar.Close()
	c, err := NewClient(liar.URL, ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, err := c.Pin(context.Background(), "hello:latest")
	if err != nil || got != c.Host()+"/hello@"+want.String() {
		t.Fatalf("Pin = %q, %v; want the digest of the bytes sent, %s", got, err, want)
	}
}

// FuzzParseTagRef: no panic, and what it accepts is a valid repository
// and tag that make up the reference exactly.
func FuzzParseTagRef(f *testing.F) {
	for _, s := range []string{"hello:latest", "team/hello:v1.2", "127.0.0.1:5000/hello:latest", "a@sha256:00", "x:", ":y", "a/b:c/d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, ref string) {
		repo, tag, err := ParseTagRef(ref)
		if err != nil {
			return
		}
		if !ValidRepo(repo) || !ValidTag(tag) || repo+":"+tag != ref {
			t.Fatalf("ParseTagRef(%q) = %q, %q", ref, repo, tag)
		}
	})
}
