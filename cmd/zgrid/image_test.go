package main

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/random"
	"github.com/google/go-containerregistry/pkg/v1/remote"

	"github.com/zerogrid/zerogrid/internal/hub"
)

// imageTestHub serves a hub in a temporary directory and returns its URL.
func imageTestHub(t *testing.T) string {
	t.Helper()
	s, err := hub.New(hub.Config{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Start("127.0.0.1:0"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		s.Shutdown(ctx)
	})
	return "http://" + s.Addr().String()
}

// imageTestTar writes a tar archive holding files to DIR/name.
func imageTestTar(t *testing.T, name string, files map[string]string) string {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range slices.Sorted(maps.Keys(files)) {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o755, Size: int64(len(files[n])), Typeflag: tar.TypeReg})
		tw.Write([]byte(files[n]))
	}
	tw.Close()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, buf.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestImagePushRootFS(t *testing.T) {
	url := imageTestHub(t)
	files := map[string]string{"bin/server": "#!/bin/sh\nexec httpd\n", "srv/index.html": "<h1>zerogrid</h1>\n"}
	p := imageTestTar(t, "Web Server.tar", files)

	out, _, err := run(t, "image", "push", p, "--hub", url, "--entrypoint", "/bin/server", "--cmd", "--port", "--cmd", "8080")
	if err != nil {
		t.Fatalf("push: %v", err)
	}
	pinned := strings.TrimSpace(out)
	host := strings.TrimPrefix(url, "http://")
	if !strings.HasPrefix(pinned, host+"/web-server@sha256:") {
		t.Fatalf("printed %q, want %s/web-server@sha256:…", pinned, host)
	}
	ref, err := name.NewDigest(pinned, name.Insecure)
	if err != nil {
		t.Fatal(err)
	}
	img, err := remote.Image(ref)
	if err != nil {
		t.Fatalf("pull %s: %v", pinned, err)
	}
	layers, _ := img.Layers()
	if len(layers) != 1 {
		t.Fatalf("%d layers", len(layers))
	}
	rc, _ := layers[0].Uncompressed()
	defer rc.Close()
	got := map[string]string{}
	for tr := tar.NewReader(rc); ; {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(tr)
		got[h.Name] = string(b)
	}
	if len(got) != len(files) || got["bin/server"] != files["bin/server"] || got["srv/index.html"] != files["srv/index.html"] {
		t.Fatalf("layer holds %v", got)
	}
	cf, err := img.ConfigFile()
	if err != nil || !slices.Equal(cf.Config.Entrypoint, []string{"/bin/server"}) || !slices.Equal(cf.Config.Cmd, []string{"--port", "8080"}) {
		t.Fatalf("config: %+v %v", cf, err)
	}

	out, _, err = run(t, "image", "push", p, "--hub", url, "--repo", "apps/web", "--tag", "v1",
		"--entrypoint", "/bin/server", "--cmd", "--port", "--cmd", "8080", "-o", "json")
	var j struct {
		Repo, Digest, Reference, Tag string
		Size                         int64
	}
	if err != nil || json.Unmarshal([]byte(out), &j) != nil {
		t.Fatalf("push -o json: %q %v", out, err)
	}
	if j.Repo != "apps/web" || j.Tag != "v1" || j.Size <= 0 || j.Reference != host+"/apps/web@"+j.Digest || !strings.HasSuffix(pinned, "@"+j.Digest) {
		t.Fatalf("json %+v (first push %s)", j, pinned)
	}
	tag, _ := name.NewTag(host+"/apps/web:v1", name.Insecure)
	if d, err := remote.Head(tag); err != nil || d.Digest.String() != j.Digest {
		t.Fatalf("tag v1: %v %v", d, err)
	}
}

func TestImagePushLayout(t *testing.T) {
	url := imageTestHub(t)
	dir := filepath.Join(t.TempDir(), "oci")
	lp, err := layout.Write(dir, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	img, _ := random.Image(1024, 2)
	if err := lp.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, "image", "push", dir, "--hub", url, "--repo", "random")
	want, _ := img.Digest()
	if err != nil || !strings.HasSuffix(strings.TrimSpace(out), "/random@"+want.String()) {
		t.Fatalf("push layout: %q %v, want digest %s", out, err, want)
	}
}

func TestImagePushErrorsSayWhatToDo(t *testing.T) {
	p := imageTestTar(t, "app.tar", map[string]string{"x": "y"})
	layoutDir := filepath.Join(t.TempDir(), "oci")
	lp, _ := layout.Write(layoutDir, empty.Index)
	lp.AppendImage(imageTestMust(random.Image(64, 1)))
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"image", "push", p, "--hub", "http://127.0.0.1:1"}, "zgridd hub --dir DIR"},
		{[]string{"image", "push", p, "--hub", "http://192.0.2.1:5000"}, "--insecure"},
		{[]string{"image", "push", p, "--hub", "127.0.0.1:5000"}, "http://HOST:PORT"},
		{[]string{"image", "push", p, "--repo", "Bad/Name", "--hub", "http://127.0.0.1:1"}, "invalid repository name"},
		{[]string{"image", "push", p, "--tag", ".x", "--hub", "http://127.0.0.1:1"}, "invalid tag"},
		{[]string{"image", "push", filepath.Join(t.TempDir(), "missing.tar")}, "no such file"},
		{[]string{"image", "push", layoutDir, "--cmd", "/bin/sh"}, "root-filesystem tarball only"},
		{[]string{"image", "push", imageTestTar(t, "___.tar", map[string]string{"x": "y"})}, "pass --repo NAME"},
	}
	for _, c := range cases {
		_, _, err := run(t, c.args...)
		if err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("zgrid %s: got %v, want an error mentioning %q", strings.Join(c.args, " "), err, c.want)
		}
	}
}

func imageTestMust[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
