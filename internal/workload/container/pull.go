package container

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"runtime"
	"strings"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
	"github.com/google/go-containerregistry/pkg/v1/types"

	"github.com/zerogrid/zerogrid/internal/workload"
)

// Limits on what a registry may send.
const (
	maxManifest = 4 << 20
	maxConfig   = 4 << 20
)

// puller fetches images by digest into the blob cache. It trusts nothing
// the registry says except content that hashes to the digest asked for.
type puller struct {
	blobs    blobStore
	base     http.RoundTripper // already guarded: plain HTTP only where allowed
	insecure map[string]bool   // host:port allowed over plain HTTP besides loopback
	maxImage int64             // bound on the compressed layers of one image
	log      *slog.Logger
}

// image is a pulled and verified image.
type image struct {
	Digest   v1.Hash // the pinned digest (an index's, for a multi-platform image)
	Manifest *v1.Manifest
	Config   *v1.ConfigFile
}

// pull returns the image ref names, from the cache or its registry.
func (p *puller) pull(ctx context.Context, ref string) (*image, error) {
	var opts []name.Option
	if reg, _, ok := strings.Cut(ref, "/"); ok && p.insecure[reg] {
		opts = append(opts, name.Insecure)
	}
	dref, err := name.NewDigest(ref, opts...)
	if err != nil {
		return nil, workload.Permanent(workload.ErrInvalid, "image %q: %v", ref, err)
	}
	pinned, err := parseDigest(dref.DigestStr())
	if err != nil {
		return nil, workload.Permanent(workload.ErrInvalid, "image %q: %v", ref, err)
	}
	s := &pullSession{p: p, repo: dref.Context(), ref: ref}
	raw, err := s.manifest(ctx, pinned)
	if err != nil {
		return nil, err
	}
	m, err := s.platformManifest(ctx, raw)
	if err != nil {
		return nil, err
	}
	cfg, err := s.config(ctx, m)
	if err != nil {
		return nil, err
	}
	if err := s.layers(ctx, m); err != nil {
		return nil, err
	}
	return &image{Digest: pinned, Manifest: m, Config: cfg}, nil
}

// pullSession is one pull: the repository and, once needed, an
// authenticated transport to it.
type pullSession struct {
	p    *puller
	repo name.Repository
	ref  string
	rt   http.RoundTripper
}

// manifest returns the verified manifest (or index) bytes for digest d.
func (s *pullSession) manifest(ctx context.Context, d v1.Hash) ([]byte, error) {
	if b, ok, err := s.p.blobs.read(d, maxManifest); err != nil || ok {
		return b, err
	}
	body, err := s.get(ctx, "manifests", d, strings.Join([]string{
		string(types.OCIManifestSchema1), string(types.OCIImageIndex),
		string(types.DockerManifestSchema2), string(types.DockerManifestList)}, ", "))
	if err != nil {
		return nil, err
	}
	defer body.Close()
	b, err := io.ReadAll(io.LimitReader(body, maxManifest+1))
	if err != nil {
		return nil, workload.Retryable(ErrRegistry, "image %s: reading the manifest: %v", s.ref, err)
	}
	if len(b) > maxManifest {
		return nil, workload.Permanent(ErrImage, "image %s: manifest is larger than %d bytes", s.ref, maxManifest)
	}
	if got := sha256Hash(b); got != d {
		return nil, workload.Permanent(ErrDigestMismatch,
			"image %s: the registry served a manifest whose digest is %s, not the pinned %s; refusing to run it", s.ref, got, d)
	}
	return b, s.p.blobs.write(d, strings.NewReader(string(b)), maxManifest)
}

// platformManifest parses raw; for an index it follows the linux/GOARCH
// entry (pinned by the index, so verified in turn).
func (s *pullSession) platformManifest(ctx context.Context, raw []byte) (*v1.Manifest, error) {
	var head struct {
		MediaType types.MediaType `json:"mediaType"`
		Manifests json.RawMessage `json:"manifests"`
	}
	if err := json.Unmarshal(raw, &head); err != nil {
		return nil, workload.Permanent(ErrImage, "image %s: manifest is not JSON: %v", s.ref, err)
	}
	if head.MediaType.IsIndex() || (head.MediaType == "" && head.Manifests != nil) {
		d, err := s.pickPlatform(raw)
		if err != nil {
			return nil, err
		}
		if raw, err = s.manifest(ctx, d); err != nil {
			return nil, err
		}
	}
	m, err := v1.ParseManifest(strings.NewReader(string(raw)))
	if err != nil || m.Config.Digest.Hex == "" {
		return nil, workload.Permanent(ErrImage, "image %s: not an image manifest (%v)", s.ref, err)
	}
	return m, nil
}

func (s *pullSession) pickPlatform(raw []byte) (v1.Hash, error) {
	idx, err := v1.ParseIndexManifest(strings.NewReader(string(raw)))
	if err != nil {
		return v1.Hash{}, workload.Permanent(ErrImage, "image %s: bad index: %v", s.ref, err)
	}
	for _, m := range idx.Manifests {
		if m.Platform != nil && m.Platform.OS == "linux" && m.Platform.Architecture == runtime.GOARCH {
			return m.Digest, nil
		}
	}
	return v1.Hash{}, workload.Permanent(ErrImage, "image %s has no linux/%s variant", s.ref, runtime.GOARCH)
}

// config returns the verified image config.
func (s *pullSession) config(ctx context.Context, m *v1.Manifest) (*v1.ConfigFile, error) {
	if err := s.blob(ctx, m.Config.Digest, maxConfig); err != nil {
		return nil, err
	}
	b, ok, err := s.p.blobs.read(m.Config.Digest, maxConfig)
	if err != nil || !ok {
		return nil, workload.Retryable(ErrImage, "image %s: config blob vanished from the cache (%v)", s.ref, err)
	}
	cfg, err := v1.ParseConfigFile(strings.NewReader(string(b)))
	if err != nil {
		return nil, workload.Permanent(ErrImage, "image %s: bad config: %v", s.ref, err)
	}
	if cfg.OS != "" && cfg.OS != "linux" {
		return nil, workload.Permanent(ErrImage, "image %s is for %s, not linux", s.ref, cfg.OS)
	}
	return cfg, nil
}

// layers fetches every layer not cached yet.
func (s *pullSession) layers(ctx context.Context, m *v1.Manifest) error {
	var total int64
	for _, l := range m.Layers {
		if !layerMediaType(l.MediaType) {
			return workload.Permanent(ErrImage, "image %s: layer %s has unsupported media type %q", s.ref, l.Digest, l.MediaType)
		}
		if total += l.Size; l.Size < 0 || total > s.p.maxImage {
			return workload.Permanent(ErrImage, "image %s: layers are larger than this node's limit of %d bytes", s.ref, s.p.maxImage)
		}
		if err := s.blob(ctx, l.Digest, l.Size); err != nil {
			return err
		}
	}
	return nil
}

func layerMediaType(mt types.MediaType) bool {
	switch mt {
	case types.OCILayer, types.OCIUncompressedLayer, types.DockerLayer, types.DockerUncompressedLayer, types.OCILayerZStd:
		return true
	}
	return false
}

// blob fetches blob d (at most limit bytes) into the cache unless present.
func (s *pullSession) blob(ctx context.Context, d v1.Hash, limit int64) error {
	if s.p.blobs.has(d) {
		return nil
	}
	body, err := s.get(ctx, "blobs", d, "")
	if err != nil {
		return err
	}
	defer body.Close()
	err = s.p.blobs.write(d, body, limit)
	switch {
	case errors.Is(err, ErrDigestMismatch):
		return workload.Permanent(ErrDigestMismatch, "image %s: %v", s.ref, err)
	case errors.Is(err, ErrImage):
		return workload.Permanent(ErrImage, "image %s: %v", s.ref, err)
	case err != nil && ctx.Err() != nil:
		return fmt.Errorf("image %s: %w", s.ref, ctx.Err())
	case err != nil:
		return workload.Retryable(ErrRegistry, "image %s: fetching %s: %v", s.ref, d, err)
	}
	s.p.log.Debug("pulled blob", "image", s.ref, "digest", d)
	return nil
}

// get GETs /v2/<repo>/<kind>/<digest> and returns the body of a 200.
func (s *pullSession) get(ctx context.Context, kind string, d v1.Hash, accept string) (io.ReadCloser, error) {
	if err := s.connect(ctx); err != nil {
		return nil, err
	}
	u := fmt.Sprintf("%s://%s/v2/%s/%s/%s", s.repo.Registry.Scheme(), s.repo.RegistryStr(), s.repo.RepositoryStr(), kind, d)
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, workload.Permanent(workload.ErrInvalid, "image %s: %v", s.ref, err)
	}
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := (&http.Client{Transport: s.rt}).Do(req)
	if err != nil {
		return nil, s.unreachable(ctx, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, workload.Retryable(ErrRegistry, "image %s: GET %s %s: %v", s.ref, kind, d, transport.CheckError(resp, http.StatusOK))
	}
	return resp.Body, nil
}

// connect pings the registry and sets up (anonymous) authentication.
func (s *pullSession) connect(ctx context.Context) error {
	if s.rt != nil {
		return nil
	}
	rt, err := transport.NewWithContext(ctx, s.repo.Registry, authn.Anonymous, s.p.base, []string{s.repo.Scope(transport.PullScope)})
	if err != nil {
		return s.unreachable(ctx, err)
	}
	s.rt = rt
	return nil
}

func (s *pullSession) unreachable(ctx context.Context, err error) error {
	if ctx.Err() != nil {
		return fmt.Errorf("image %s: %w", s.ref, ctx.Err())
	}
	if errors.Is(err, ErrInsecureRegistry) {
		return workload.Permanent(ErrInsecureRegistry, "image %s: registry %s is reachable only over plain HTTP, which this node allows for loopback and configured registries only",
			s.ref, s.repo.RegistryStr())
	}
	return workload.Retryable(ErrRegistry, "image %s: registry %s: %v", s.ref, s.repo.RegistryStr(), err)
}

// guard refuses plain HTTP except to loopback and the allowed registries.
type guard struct {
	inner    http.RoundTripper
	insecure map[string]bool
}

func (g guard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Scheme == "http" && !g.allowHTTP(req.URL.Host) {
		return nil, fmt.Errorf("%w: %s", ErrInsecureRegistry, req.URL.Host)
	}
	return g.inner.RoundTrip(req)
}

func (g guard) allowHTTP(hostport string) bool {
	if g.insecure[hostport] {
		return true
	}
	host, _, err := net.SplitHostPort(hostport)
	if err != nil {
		host = hostport
	}
	ip := net.ParseIP(strings.Trim(host, "[]"))
	return host == "localhost" || ip != nil && ip.IsLoopback()
}
