package grid

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/zerogrid/zerogrid/internal/hub"
)

// example builds examples/hello from the source tree into a one-file root
// filesystem, pushes it to the hub at hubURL as hello:latest (the tag
// examples/hello.yaml names) and writes outDir/hello.yaml:
// examples/hello.yaml with the image pinned by digest, the node, and the
// gateway-name workload for gw. It returns the path written.
func example(ctx context.Context, src, hubURL string, insecure bool, node uint64, gw *Gateway, outDir string) (string, error) {
	if err := os.MkdirAll(outDir, 0o700); err != nil {
		return "", err
	}
	bin := filepath.Join(outDir, "hello")
	if err := goBuild(ctx, src, "./examples/hello", bin, []string{"CGO_ENABLED=0"}); err != nil {
		return "", err
	}
	tarPath := filepath.Join(outDir, "hello-rootfs.tar")
	if err := rootfsTar(bin, tarPath); err != nil {
		return "", err
	}
	art, err := hub.OpenSource(tarPath, hub.RootFSConfig{Entrypoint: []string{"/hello"}})
	if err != nil {
		return "", err
	}
	c, err := hub.NewClient(hubURL, hub.ClientOptions{Insecure: insecure})
	if err != nil {
		return "", err
	}
	pushed, err := c.Push(ctx, "hello", "latest", art)
	if err != nil {
		return "", fmt.Errorf("push example image: %w", err)
	}
	tmpl, err := os.ReadFile(filepath.Join(src, "examples", "hello.yaml"))
	if err != nil {
		return "", err
	}
	out := filepath.Join(outDir, "hello.yaml")
	spec, err := rewriteSpec(tmpl, pushed.Reference, node, gw, exampleHeader(filepath.Dir(outDir), out, gw))
	if err != nil {
		return "", err
	}
	return out, os.WriteFile(out, spec, 0o644)
}

// exampleHeader is the comment at the top of the spec written to out for
// the grid in dir.
func exampleHeader(dir, out string, gw *Gateway) string {
	var b strings.Builder
	b.WriteString("# Written by zgrid up from examples/hello.yaml for the grid in\n# " + dir + ":\n")
	b.WriteString("# its image pinned by digest in the grid's hub and its node set")
	if gw != nil {
		fmt.Fprintf(&b, ", and a\n# gateway-name workload (at the end) that serves the page at\n# %s", strings.Replace(gw.URL, "NAME", ExampleName, 1))
	}
	fmt.Fprintf(&b, ".\n#\n#   zgrid --grid %s deploy -f %s\n#\n", filepath.Join(dir, "grid.json"), out)
	return b.String()
}

var (
	imageLine   = regexp.MustCompile(`(?m)^([ \t]*(?:- )?)image:[ \t]*\S+[ \t]*$`)
	versionLine = regexp.MustCompile(`(?m)^version:.*$`)
	nodeLine    = regexp.MustCompile(`(?m)^node:.*\n?`)
)

// rewriteSpec sets the (only) image line to ref and the top-level node,
// replaces the comment above the version: line with header, and adds the
// gateway-name workload for gw when gw is not nil.
func rewriteSpec(tmpl []byte, ref string, node uint64, gw *Gateway, header string) ([]byte, error) {
	if n := len(imageLine.FindAll(tmpl, -1)); n != 1 {
		return nil, fmt.Errorf("examples/hello.yaml: want exactly one image: line, found %d", n)
	}
	out := imageLine.ReplaceAll(tmpl, []byte("${1}image: "+ref))
	out = nodeLine.ReplaceAll(out, nil)
	loc := versionLine.FindIndex(out)
	if loc == nil {
		return nil, fmt.Errorf("examples/hello.yaml: no top-level version: line")
	}
	var b bytes.Buffer
	b.WriteString(header)
	b.Write(out[loc[0]:loc[1]])
	fmt.Fprintf(&b, "\nnode: %d", node)
	b.Write(out[loc[1]:])
	if gw != nil {
		if !bytes.HasSuffix(b.Bytes(), []byte("\n")) {
			b.WriteByte('\n')
		}
		fmt.Fprintf(&b, gatewayBlock, ExampleName, gw.Key)
	}
	return b.Bytes(), nil
}

// ExampleName is the gateway name the example is served at, claimed for
// the grid's user.
const ExampleName = "hello"

// gatewayBlock is the gateway-name workload zgrid up adds to the example:
// the web container's port 8080 at https://hello.grid.localhost through the
// grid's gateway.
const gatewayBlock = `  # Added by zgrid up: serve web's port 8080 at https://%[1]s.grid.localhost
  # through the grid's gateway (the node dials out to it, at the address
  # the gateway announced on the ledger: it follows when the gateway moves).
  - name: site
    type: gateway-name
    public_name: %[1]s
    backend: web
    port: 8080
    gateways:
      - {key: %[2]s}
`

// rootfsTar writes a tarball holding bin as /hello and an empty /data,
// with fixed times and owners so that the same binary gives the same
// digest.
func rootfsTar(bin, out string) error {
	f, err := os.Open(bin)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	w, err := os.Create(out)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(w)
	hdrs := []*tar.Header{
		{Name: "data/", Typeflag: tar.TypeDir, Mode: 0o755},
		{Name: "hello", Typeflag: tar.TypeReg, Mode: 0o755, Size: fi.Size()},
	}
	for _, h := range hdrs {
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(h); err != nil {
			w.Close()
			return err
		}
		if h.Typeflag == tar.TypeReg {
			if _, err := io.Copy(tw, f); err != nil {
				w.Close()
				return err
			}
		}
	}
	if err := tw.Close(); err != nil {
		w.Close()
		return err
	}
	return w.Close()
}

// hostPort is the host:port of an http:// URL.
func hostPort(u string) string { return strings.TrimPrefix(u, "http://") }
