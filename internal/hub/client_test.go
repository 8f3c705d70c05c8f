package hub

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"maps"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
)

// writeTar writes a tar archive of files (name → content) to a new file.
func writeTar(t *testing.T, files map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o755, Size: int64(len(files[n])), Typeflag: tar.TypeReg})
		tw.Write([]byte(files[n]))
	}
	tw.Close()
	p := filepath.Join(t.TempDir(), "rootfs.tar")
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// layerFiles reads the files of an image's only layer.
func layerFiles(t *testing.T, img v1.Image) map[string]string {
	t.Helper()
	layers, err := img.Layers()
	if err != nil || len(layers) != 1 {
		t.Fatalf("layers: %d %v", len(layers), err)
	}
	rc, err := layers[0].Uncompressed()
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	files := map[string]string{}
	tr := tar.NewReader(rc)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		files[h.Name] = string(b)
	}
	return files
}

func TestClientPushesRootFSAndPullsByDigest(t *testing.T) {
	t.Parallel()
	_, host := startHub(t, t.TempDir(), nil)
	files := map[string]string{"bin/hello": "#!/bin/sh\necho hello\n", "etc/motd": "zerogrid\n"}
	p := writeTar(t, files)
	cfg := RootFSConfig{Entrypoint: []string{"/bin/hello"}, Cmd: []string{"--loud"}, Arch: "arm64"}
	img, err := FromRootFS(p, cfg)
	if err != nil {
		t.Fatal(err)
	}
	again, _ := FromRootFS(p, cfg)
	if a, b := must(img.Digest()), must(again.Digest()); a != b {
		t.Fatalf("same tarball, two digests: %s %s", a, b)
	}
	c, err := NewClient("http://"+host, ClientOptions{})
	if err != nil {
		t.Fatal(err)
	}
	pushed, err := c.Push(context.Background(), "demo/hello", "", img)
	if err != nil {
		t.Fatal(err)
	}
	if want := host + "/demo/hello@" + must(img.Digest()).String(); pushed.Reference != want || pushed.MediaType != "application/vnd.oci.image.manifest.v1+json" {
		t.Fatalf("pushed %+v, want reference %s", pushed, want)
	}
	got, err := c.Image(context.Background(), "demo/hello", pushed.Digest)
	if err != nil {
		t.Fatal(err)
	}
	if fs := layerFiles(t, got); !maps.Equal(fs, files) {
		t.Fatalf("layer holds %v, want %v", fs, files)
	}
	cf, err := got.ConfigFile()
	if err != nil || !slices.Equal(cf.Config.Entrypoint, cfg.Entrypoint) || !slices.Equal(cf.Config.Cmd, cfg.Cmd) ||
		cf.OS != "linux" || cf.Architecture != "arm64" || !slices.Equal(cf.Config.Env, []string{defaultPath}) {
		t.Fatalf("config %+v %v", cf, err)
	}
	if _, err := c.Push(context.Background(), "demo/hello", "v1", img); err != nil {
		t.Fatalf("tag an existing image: %v", err)
	}
}

func TestClientURLPolicy(t *testing.T) {
	t.Parallel()
	cases := []struct {
		url      string
		insecure bool
		want     error
	}{
		{"http://127.0.0.1:5000", false, nil},
		{"http://[::1]:5000", false, nil},
		{"http://localhost:5000/", false, nil},
		{"https://hub.example:443", false, nil},
		{"http://10.1.2.3:5000", false, ErrInsecure},
		{"http://hub.example:5000", false, ErrInsecure},
		{"http://10.1.2.3:5000", true, nil},
		{"ftp://127.0.0.1", false, ErrBadHubURL},
		{"127.0.0.1:5000", false, ErrBadHubURL},
		{"http://127.0.0.1:5000/prefix", false, ErrBadHubURL},
		{"http://user:pw@127.0.0.1:5000", false, ErrBadHubURL},
	}
	for _, c := range cases {
		_, err := NewClient(c.url, ClientOptions{Insecure: c.insecure})
		if !errors.Is(err, c.want) {
			t.Errorf("NewClient(%q, insecure=%v) = %v, want %v", c.url, c.insecure, err, c.want)
		}
	}
}

func TestClientTalksToTheHubOnly(t *testing.T) {
	t.Parallel()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	c, _ := NewClient("http://"+addr, ClientOptions{})
	if err := c.Ping(context.Background()); !errors.Is(err, ErrUnreachable) {
		t.Errorf("ping of a closed port: %v", err)
	}
	if _, err := c.Image(context.Background(), "x", must(v1.NewHash("sha256:"+strings.Repeat("0", 64)))); !errors.Is(err, ErrUnreachable) {
		t.Errorf("pull from a closed port: %v", err)
	}

	elsewhere := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		t.Errorf("the client followed a redirect to %s", r.URL)
	}))
	defer elsewhere.Close()
	hostile := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/v2/" {
			return
		}
		http.Redirect(w, r, elsewhere.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer hostile.Close()
	c, _ = NewClient(hostile.URL, ClientOptions{})
	_, err = c.Image(context.Background(), "x", must(v1.NewHash("sha256:"+strings.Repeat("0", 64))))
	if err == nil || !strings.Contains(err.Error(), "only the hub") {
		t.Errorf("redirect to another host: %v", err)
	}
}

func TestOpenSource(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	one := filepath.Join(dir, "one")
	lp, err := layout.Write(one, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	img, _ := random.Image(256, 1)
	lp.AppendImage(img)
	got, err := OpenSource(one, RootFSConfig{})
	if err != nil || must(got.Digest()) != must(img.Digest()) {
		t.Fatalf("layout with one image: %v", err)
	}
	two := filepath.Join(dir, "two")
	lp2, _ := layout.Write(two, empty.Index)
	lp2.AppendImage(img)
	lp2.AppendImage(must(random.Image(256, 1)))

	notTar := filepath.Join(dir, "notes.txt")
	os.WriteFile(notTar, []byte(strings.Repeat("not a tar archive\n", 40)), 0o600)
	emptyTar := writeTar(t, nil)
	climbing := writeTar(t, map[string]string{"../../etc/passwd": "x"})
	cases := []struct {
		name, path string
		cfg        RootFSConfig
		want       string
	}{
		{"two images", two, RootFSConfig{}, "lists 2 manifests"},
		{"layout with entrypoint", one, RootFSConfig{Entrypoint: []string{"/x"}}, "carries its own configuration"},
		{"plain directory", dir, RootFSConfig{}, "no oci-layout"},
		{"not a tar", notTar, RootFSConfig{}, ErrBadSource.Error()},
		{"empty tar", emptyTar, RootFSConfig{}, "empty tar"},
		{"climbing entry", climbing, RootFSConfig{}, "climbs out"},
		{"missing", filepath.Join(dir, "nope.tar"), RootFSConfig{}, "no such file"},
	}
	for _, c := range cases {
		if _, err := OpenSource(c.path, c.cfg); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
}
