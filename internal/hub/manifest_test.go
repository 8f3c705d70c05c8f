package hub

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/types"
)

func pushBlob(t *testing.T, base, repo string, data []byte) string {
	t.Helper()
	resp := do(t, http.MethodPost, base+"/v2/"+repo+"/blobs/uploads/?digest="+sha(data), "", data)
	if resp.StatusCode != http.StatusCreated {
		t.Fatalf("push blob: %s", resp.Status)
	}
	return sha(data)
}

// imageManifest is an OCI image manifest with one layer.
func imageManifest(mediaType, config string, configSize int, layer string, layerSize int) []byte {
	mt := ""
	if mediaType != "" {
		mt = fmt.Sprintf(`"mediaType":%q,`, mediaType)
	}
	return fmt.Appendf(nil, `{"schemaVersion":2,%s"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":%q,"size":%d}]}`,
		mt, config, configSize, layer, layerSize)
}

func TestManifestChecks(t *testing.T) {
	t.Parallel()
	_, host := startHub(t, t.TempDir(), func(c *Config) { c.MaxManifestBytes = 2048 })
	base := "http://" + host
	cfg, layer := []byte(`{"architecture":"amd64","os":"linux"}`), []byte("layer bytes")
	cd, ld := pushBlob(t, base, "r", cfg), pushBlob(t, base, "r", layer)
	oci := string(types.OCIManifestSchema1)
	good := imageManifest(oci, cd, len(cfg), ld, len(layer))
	missing := sha([]byte("never pushed"))
	child := sha(good)
	index := fmt.Appendf(nil, `{"schemaVersion":2,"mediaType":%q,"manifests":[{"mediaType":%q,"digest":%q,"size":%d}]}`, types.OCIImageIndex, oci, child, len(good))
	cases := []struct {
		name, repo, ref, contentType string
		body                         []byte
		status                       int
		code                         string
	}{
		{"index before its child", "r", "idx", string(types.OCIImageIndex), index, 400, "MANIFEST_BLOB_UNKNOWN"},
		{"good by tag", "r", "v1", oci, good, 201, ""},
		{"good by digest", "r", sha(good), oci, good, 201, ""},
		{"index after its child", "r", "idx", string(types.OCIImageIndex), index, 201, ""},
		{"index in a repo without the child", "other", "idx", string(types.OCIImageIndex), index, 400, "MANIFEST_BLOB_UNKNOWN"},
		{"no Content-Type, mediaType in body", "r", "v2", "", good, 201, ""},
		{"wrong digest in URL", "r", missing, oci, good, 400, "DIGEST_INVALID"},
		{"missing layer", "r", "v3", oci, imageManifest(oci, cd, len(cfg), missing, 5), 400, "MANIFEST_BLOB_UNKNOWN"},
		{"wrong layer size", "r", "v3", oci, imageManifest(oci, cd, len(cfg), ld, len(layer)+1), 400, "MANIFEST_INVALID"},
		{"sha512 layer", "r", "v3", oci, imageManifest(oci, cd, len(cfg), "sha512:"+strings.Repeat("ab", 64), 5), 400, "MANIFEST_INVALID"},
		{"Content-Type disagrees", "r", "v3", string(types.DockerManifestSchema2), good, 400, "MANIFEST_INVALID"},
		{"no media type at all", "r", "v3", "", imageManifest("", cd, len(cfg), ld, len(layer)), 400, "MANIFEST_INVALID"},
		{"unsupported media type", "r", "v3", "application/json", imageManifest("", cd, len(cfg), ld, len(layer)), 400, "MANIFEST_INVALID"},
		{"schema 1", "r", "v3", string(types.DockerManifestSchema1), []byte(`{"schemaVersion":1}`), 400, "MANIFEST_INVALID"},
		{"not JSON", "r", "v3", oci, []byte("<html>"), 400, "MANIFEST_INVALID"},
		{"too large", "r", "v3", oci, append(good[:len(good)-1], []byte(`,"annotations":{"x":"`+strings.Repeat("y", 2048)+`"}}`)...), 413, "SIZE_INVALID"},
		{"bad tag", "r", ".hidden", oci, good, 400, "MANIFEST_INVALID"},
		{"upper-case repo", "R", "v1", oci, good, 400, "NAME_INVALID"},
		{"dot-dot repo", "a/../b", "v1", oci, good, 400, "NAME_INVALID"},
		{"underscore component", "a/_tags", "v1", oci, good, 400, "NAME_INVALID"},
	}
	for _, c := range cases {
		resp := do(t, http.MethodPut, base+"/v2/"+c.repo+"/manifests/"+c.ref, c.contentType, c.body)
		if resp.StatusCode != c.status || errCode(t, resp) != c.code {
			t.Errorf("%s: %s %s, want %d %s", c.name, resp.Status, errCode(t, resp), c.status, c.code)
		}
		if c.status == 201 && resp.Header.Get("Docker-Content-Digest") != sha(c.body) {
			t.Errorf("%s: digest header %q", c.name, resp.Header.Get("Docker-Content-Digest"))
		}
	}
	for _, ref := range []string{"v1", "v2", child} {
		resp := do(t, http.MethodGet, base+"/v2/r/manifests/"+ref, "", nil)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != oci || resp.Header.Get("Docker-Content-Digest") != child {
			t.Errorf("GET %s: %s %q %q", ref, resp.Status, resp.Header.Get("Content-Type"), resp.Header.Get("Docker-Content-Digest"))
		}
	}
	for _, ref := range []string{"v3", missing} {
		if resp := do(t, http.MethodGet, base+"/v2/r/manifests/"+ref, "", nil); resp.StatusCode != 404 || errCode(t, resp) != "MANIFEST_UNKNOWN" {
			t.Errorf("refused manifest %s is served: %s", ref, resp.Status)
		}
	}
	if resp := do(t, http.MethodDelete, base+"/v2/r/manifests/v1", "", nil); resp.StatusCode != 405 {
		t.Errorf("DELETE manifest: %s", resp.Status)
	}
	if resp := do(t, http.MethodDelete, base+"/v2/r/blobs/"+ld, "", nil); resp.StatusCode != 405 {
		t.Errorf("DELETE blob: %s", resp.Status)
	}
	if resp := do(t, http.MethodGet, base+"/v2/nope/manifests/v1", "", nil); resp.StatusCode != 404 || errCode(t, resp) != "NAME_UNKNOWN" {
		t.Errorf("unknown repo: %s %s", resp.Status, errCode(t, resp))
	}
}

func TestTagsAndCatalogPagination(t *testing.T) {
	t.Parallel()
	_, host := startHub(t, t.TempDir(), nil)
	base := "http://" + host
	cfg, layer := []byte(`{}`), []byte("l")
	cd, ld := pushBlob(t, base, "x", cfg), pushBlob(t, base, "x", layer)
	m := imageManifest(string(types.OCIManifestSchema1), cd, len(cfg), ld, len(layer))
	for _, repo := range []string{"b/one", "a", "c"} {
		for _, tag := range []string{"v2", "v1", "latest"} {
			if resp := do(t, http.MethodPut, base+"/v2/"+repo+"/manifests/"+tag, "", m); resp.StatusCode != 201 {
				t.Fatalf("push %s:%s: %s", repo, tag, resp.Status)
			}
		}
	}
	cases := []struct {
		path, want, link string
	}{
		{"/v2/a/tags/list", `{"name":"a","tags":["latest","v1","v2"]}`, ""},
		{"/v2/a/tags/list?n=2", `{"name":"a","tags":["latest","v1"]}`, `</v2/a/tags/list?last=v1&n=2>; rel="next"`},
		{"/v2/a/tags/list?n=2&last=v1", `{"name":"a","tags":["v2"]}`, ""},
		{"/v2/a/tags/list?n=0", `{"name":"a","tags":[]}`, ""},
		{"/v2/_catalog", `{"repositories":["a","b/one","c"]}`, ""},
		{"/v2/_catalog?n=1&last=a", `{"repositories":["b/one"]}`, `</v2/_catalog?last=b%2Fone&n=1>; rel="next"`},
	}
	for _, c := range cases {
		resp := do(t, http.MethodGet, base+c.path, "", nil)
		var got, want any
		body, _ := io.ReadAll(resp.Body)
		json.Unmarshal(body, &got)
		json.Unmarshal([]byte(c.want), &want)
		if resp.StatusCode != 200 || fmt.Sprint(got) != fmt.Sprint(want) || resp.Header.Get("Link") != c.link {
			t.Errorf("GET %s: %s %s Link %q, want %s Link %q", c.path, resp.Status, body, resp.Header.Get("Link"), c.want, c.link)
		}
	}
	if resp := do(t, http.MethodGet, base+"/v2/a/tags/list?n=-1", "", nil); resp.StatusCode != 400 {
		t.Errorf("n=-1: %s", resp.Status)
	}
	if resp := do(t, http.MethodGet, base+"/v2/zzz/tags/list", "", nil); resp.StatusCode != 404 {
		t.Errorf("tags of unknown repo: %s", resp.Status)
	}
}
