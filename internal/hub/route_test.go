package hub

import (
	"bytes"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

func TestParseRoute(t *testing.T) {
	t.Parallel()
	d := "sha256:" + strings.Repeat("ab", 32)
	id := strings.Repeat("0f", 16)
	cases := []struct {
		path      string
		kind      routeKind
		repo, ref string
		errCode   string
	}{
		{"/v2/", routeBase, "", "", ""},
		{"/v2", routeBase, "", "", ""},
		{"/v2/_catalog", routeCatalog, "", "", ""},
		{"/v2/a/b/manifests/latest", routeManifest, "a/b", "latest", ""},
		{"/v2/a/manifests/" + d, routeManifest, "a", d, ""},
		{"/v2/a/blobs/manifests/x", routeManifest, "a/blobs", "x", ""},
		{"/v2/a/tags/list", routeTags, "a", "", ""},
		{"/v2/a/blobs/" + d, routeBlob, "a", d, ""},
		{"/v2/a/blobs/blobs/" + d, routeBlob, "a/blobs", d, ""},
		{"/v2/a/blobs/uploads/", routeUploadStart, "a", "", ""},
		{"/v2/a/blobs/uploads", routeUploadStart, "a", "", ""},
		{"/v2/a/blobs/uploads/" + id, routeUpload, "a", id, ""},
		{"/v2/x/blobs/uploads/blobs/" + d, routeBlob, "x/blobs/uploads", d, ""},
		{"/v1/a/manifests/x", 0, "", "", "NOT_FOUND"},
		{"/v2x/a/manifests/x", 0, "", "", "NOT_FOUND"},
		{"/v2/a/referrers/" + d, 0, "", "", "NOT_FOUND"},
		{"/v2/a/manifests/", 0, "", "", "NOT_FOUND"},
		{"/v2/../manifests/x", 0, "", "", "NAME_INVALID"},
		{"/v2/a//b/manifests/x", 0, "", "", "NAME_INVALID"},
		{"/v2/a/manifests/sha512:" + strings.Repeat("ab", 64), 0, "", "", "DIGEST_INVALID"},
		{"/v2/a/blobs/sha256:" + strings.Repeat("AB", 32), 0, "", "", "DIGEST_INVALID"},
		{"/v2/a/manifests/-x", 0, "", "", "MANIFEST_INVALID"},
		{"/v2/a/blobs/uploads/../../x", 0, "", "", "NOT_FOUND"},
		{"/v2/a/blobs/uploads/..", 0, "", "", "BLOB_UPLOAD_UNKNOWN"},
	}
	for _, c := range cases {
		r, err := parseRoute(c.path)
		if c.errCode != "" {
			if err == nil || err.code != c.errCode {
				t.Errorf("%s: %+v %v, want %s", c.path, r, err, c.errCode)
			}
			continue
		}
		ref := r.tag + r.upload
		if r.digest.Hex != "" {
			ref = r.digest.String()
		}
		if err != nil || r.kind != c.kind || r.repo != c.repo || ref != c.ref {
			t.Errorf("%s: %+v (ref %q) %v", c.path, r, ref, err)
		}
	}
}

// The specification's grammar, as regular expressions, to check the
// hand-written validators against.
const (
	specRepo = `^[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*$`
	specTag  = `^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$`
)

// FuzzParseRoute checks, for any request path, that parsing does not
// panic, that the validators agree with the specification's grammar, and
// that every accepted name maps to a file path inside the store.
func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{"/v2/a/b/manifests/latest", "/v2/a/blobs/uploads/", "/v2/a/tags/list",
		"/v2/a-b__c.d/blobs/sha256:" + strings.Repeat("0", 64), "/v2/../../etc/manifests/passwd",
		"/v2/a/blobs/uploads/" + strings.Repeat("a", 32), "/v2/_catalog", "/v2/a/manifests/..", "/v2/a/b/c/d/e/f/tags/list"} {
		f.Add(s)
	}
	repoRE, tagRE := regexp.MustCompile(specRepo), regexp.MustCompile(specTag)
	f.Fuzz(func(t *testing.T, p string) {
		r, err := parseRoute(p)
		if err != nil {
			return
		}
		if (r.kind == routeBase || r.kind == routeCatalog) != (r.repo == "") {
			t.Fatalf("%q: kind %d with repo %q", p, r.kind, r.repo)
		}
		if r.repo != "" && (!repoRE.MatchString(r.repo) || len(r.repo) > maxRepoLen || !filepath.IsLocal(r.repo)) {
			t.Fatalf("%q: accepted repo %q", p, r.repo)
		}
		if r.tag != "" && (!tagRE.MatchString(r.tag) || !filepath.IsLocal(r.tag)) {
			t.Fatalf("%q: accepted tag %q", p, r.tag)
		}
		if r.kind == routeBlob && (r.digest.Algorithm != "sha256" || len(r.digest.Hex) != 64) {
			t.Fatalf("%q: accepted digest %v", p, r.digest)
		}
		if slices.Contains(strings.Split(r.repo, "/"), "..") {
			t.Fatalf("%q: repo %q climbs", p, r.repo)
		}
	})
}

// FuzzValidators compares ValidRepo and ValidTag with the grammar on any
// string.
func FuzzValidators(f *testing.F) {
	for _, s := range []string{"a", "a/b", "a__b", "a___b", "a--b", "a.-b", "A", "_a", "a/", "latest", ".x", "x.", strings.Repeat("a", 129)} {
		f.Add(s)
	}
	repoRE, tagRE := regexp.MustCompile(specRepo), regexp.MustCompile(specTag)
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := ValidRepo(s), repoRE.MatchString(s) && len(s) <= maxRepoLen; got != want {
			t.Fatalf("ValidRepo(%q) = %v, grammar says %v", s, got, want)
		}
		if got, want := ValidTag(s), tagRE.MatchString(s); got != want {
			t.Fatalf("ValidTag(%q) = %v, grammar says %v", s, got, want)
		}
	})
}

// noRefs answers that every reference is stored, so that FuzzCheckManifest
// reaches the whole of checkManifest.
type noRefs struct{}

func (noRefs) blob(d v1.Descriptor) error     { return nil }
func (noRefs) manifest(d v1.Descriptor) error { return nil }

// FuzzCheckManifest feeds arbitrary bodies and content types to the
// manifest validator: it must not panic, and what it accepts must be a
// JSON manifest of a supported type.
func FuzzCheckManifest(f *testing.F) {
	f.Add("application/vnd.oci.image.manifest.v1+json", []byte(imageManifest("", "sha256:"+strings.Repeat("1", 64), 2, "sha256:"+strings.Repeat("2", 64), 3)))
	f.Add("", []byte(`{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:`+strings.Repeat("3", 64)+`","size":1}]}`))
	f.Add("application/json; charset=utf-8", []byte(`{"schemaVersion":2}`))
	f.Fuzz(func(t *testing.T, contentType string, body []byte) {
		mt, err := checkManifest(contentType, body, noRefs{})
		if err != nil {
			return
		}
		if !slices.Contains(manifestTypes(), mt) || !bytes.HasPrefix(bytes.TrimSpace(body), []byte("{")) {
			t.Fatalf("accepted %q as %s", body, mt)
		}
	})
}
