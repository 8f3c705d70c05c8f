package hub

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/remote/transport"
)

// ClientOptions configure a Client. Zero is right for most callers.
type ClientOptions struct {
	// Insecure allows plain HTTP to a hub that is not on a loopback
	// address. Digests are still verified: plain HTTP exposes what is
	// pulled and pushed, and lets a network attacker refuse service, but
	// cannot make a digest name other bytes.
	Insecure bool
	// Transport is the base transport (default: a clone of
	// http.DefaultTransport).
	Transport http.RoundTripper
}

// Client pushes to and pulls from one hub with go-containerregistry's
// remote package. It talks to that hub's host only: a hub cannot redirect
// it elsewhere. Safe for concurrent use.
type Client struct {
	base  *url.URL
	plain bool // the hub is http://
	rt    http.RoundTripper
}

// NewClient returns a client of the hub at hubURL, "http://HOST:PORT" or
// "https://HOST[:PORT]". Plain HTTP is allowed only to a loopback host
// (127.0.0.0/8, ::1, localhost) unless opts.Insecure.
func NewClient(hubURL string, opts ClientOptions) (*Client, error) {
	u, err := url.Parse(hubURL)
	if err != nil || u.Host == "" || (u.Scheme != "http" && u.Scheme != "https") ||
		(u.Path != "" && u.Path != "/") || u.User != nil || u.RawQuery != "" {
		return nil, fmt.Errorf("%w %q: want http://HOST:PORT or https://HOST[:PORT]", ErrBadHubURL, hubURL)
	}
	u.Path = ""
	plain := u.Scheme == "http"
	if plain && !opts.Insecure && !isLoopback(u.Hostname()) {
		return nil, fmt.Errorf("%w: %s", ErrInsecure, hubURL)
	}
	base := opts.Transport
	if base == nil {
		base = http.DefaultTransport.(*http.Transport).Clone()
	}
	c := &Client{base: u, plain: plain}
	c.rt = &hostGuard{host: u.Host, allowHTTP: plain, next: base}
	return c, nil
}

// isLoopback reports whether host is a loopback IP or "localhost".
func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.IsLoopback()
}

// Host is the hub's HOST:PORT, as it appears in image references.
func (c *Client) Host() string { return c.base.Host }

// Ping checks that a registry answers at the hub's URL. A hub that cannot
// be reached is ErrUnreachable.
func (c *Client) Ping(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base.String()+"/v2/", nil)
	if err != nil {
		return err
	}
	resp, err := c.rt.RoundTrip(req)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnreachable, c.base, err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusUnauthorized {
		return fmt.Errorf("%w: %s answers %s to /v2/: not an OCI registry", ErrUnreachable, c.base, resp.Status)
	}
	return nil
}

// Pushed describes a pushed image or index.
type Pushed struct {
	Repo      string  `json:"repo"`
	Tag       string  `json:"tag,omitempty"`
	Digest    v1.Hash `json:"digest"`
	MediaType string  `json:"media_type"`
	Size      int64   `json:"size"`      // bytes of the manifest: with MediaType and Digest, an OCI descriptor
	Reference string  `json:"reference"` // HOST:PORT/REPO@sha256:HEX, the pinned reference
}

// Push uploads a, with every blob and child manifest it references, to
// repo, and tags it when tag is not empty. Without a tag only its digest
// names it.
func (c *Client) Push(ctx context.Context, repo, tag string, a Artifact) (Pushed, error) {
	if err := CheckRepoTag(repo, tag); err != nil {
		return Pushed{}, err
	}
	p, err := describe(a)
	if err != nil {
		return Pushed{}, err
	}
	p.Repo, p.Tag = repo, tag
	p.Reference = c.Host() + "/" + repo + "@" + p.Digest.String()
	var ref name.Reference
	if tag != "" {
		ref, err = name.NewTag(c.Host()+"/"+repo+":"+tag, c.nameOpts()...)
	} else {
		ref, err = name.NewDigest(p.Reference, c.nameOpts()...)
	}
	if err != nil {
		return Pushed{}, err
	}
	if err := remote.Push(ref, a, c.remoteOpts(ctx)...); err != nil {
		return Pushed{}, c.explain(err)
	}
	return p, nil
}

// CheckRepoTag checks a repository name and, unless it is empty, a tag,
// with a message that says what is allowed.
func CheckRepoTag(repo, tag string) error {
	if !ValidRepo(repo) {
		return fmt.Errorf("%w %q: lower-case letters and digits, separated by . _ __ or -, in components joined by /", ErrBadRepo, repo)
	}
	if tag != "" && !ValidTag(tag) {
		return fmt.Errorf("%w %q: up to 128 letters, digits, . _ -, not starting with . or -", ErrBadTag, tag)
	}
	return nil
}

func describe(a Artifact) (Pushed, error) {
	var p Pushed
	mt, err := a.MediaType()
	if err != nil {
		return p, err
	}
	if p.Digest, err = a.Digest(); err != nil {
		return p, err
	}
	if p.Size, err = a.Size(); err != nil {
		return p, err
	}
	p.MediaType = string(mt)
	return p, nil
}

// Image returns the image of repo whose manifest has digest h. Its
// manifest has been checked against h; its config and layers are checked
// against the manifest's digests as they are read, and a mismatch is an
// error from the reader at the end of the blob: read to io.EOF and check
// the error before trusting what was read.
func (c *Client) Image(ctx context.Context, repo string, h v1.Hash) (v1.Image, error) {
	ref, err := name.NewDigest(c.Host()+"/"+repo+"@"+h.String(), c.nameOpts()...)
	if err != nil {
		return nil, err
	}
	img, err := remote.Image(ref, c.remoteOpts(ctx)...)
	if err != nil {
		return nil, c.explain(err)
	}
	return img, nil
}

// Pin resolves ref, "REPO:TAG" in this hub, to the pinned reference
// HOST:PORT/REPO@sha256:HEX of the manifest the tag names now. The digest
// is computed here over the manifest bytes the hub sent, never taken from
// its headers, so the pinned reference names exactly what was received;
// which manifest a tag names is the hub's word, so callers show the result.
// A ref that names a registry (a first component with "." or ":", or
// "localhost"), a digest, or no tag is ErrBadRef; a tag the hub does not
// hold is ErrTagUnknown.
func (c *Client) Pin(ctx context.Context, ref string) (string, error) {
	repo, tag, err := ParseTagRef(ref)
	if err != nil {
		return "", err
	}
	t, err := name.NewTag(c.Host()+"/"+repo+":"+tag, c.nameOpts()...)
	if err != nil {
		return "", fmt.Errorf("%w %q: %w", ErrBadRef, ref, err)
	}
	desc, err := remote.Get(t, c.remoteOpts(ctx)...)
	if err != nil {
		var te *transport.Error
		if errors.As(err, &te) && te.StatusCode == http.StatusNotFound {
			return "", fmt.Errorf("%w: %s has no %s:%s (push it: zgrid image push --hub %s --repo %s --tag %s PATH)", ErrTagUnknown, c.base, repo, tag, c.base, repo, tag)
		}
		return "", c.explain(fmt.Errorf("resolve %s at %s: %w", ref, c.base, err))
	}
	if !slices.Contains(manifestTypes(), desc.MediaType) {
		return "", fmt.Errorf("%s at %s is a %s, not an image manifest or index", ref, c.base, desc.MediaType)
	}
	h, _, err := v1.SHA256(bytes.NewReader(desc.Manifest))
	if err != nil {
		return "", err
	}
	return c.Host() + "/" + repo + "@" + h.String(), nil
}

// ParseTagRef splits "REPO:TAG", an image named by a tag in a hub that is
// not part of the name, into its repository and tag.
func ParseTagRef(ref string) (repo, tag string, err error) {
	bad := func(why string) (string, string, error) {
		return "", "", fmt.Errorf("%w %q: %s", ErrBadRef, ref, why)
	}
	if strings.Contains(ref, "@") {
		return bad("it is pinned by digest already")
	}
	i := strings.LastIndexByte(ref, ':')
	if j := strings.IndexByte(ref, '/'); j >= 0 {
		if first := ref[:j]; strings.ContainsAny(first, ".:") || first == "localhost" {
			return bad("it names a registry (" + first + "): pin it by digest as HOST/REPO@sha256:<64 hex>, or push it to the hub and write REPO:TAG")
		}
	}
	if i < 0 || i == len(ref)-1 || strings.Contains(ref[i:], "/") {
		return bad("it names no tag: write REPO:TAG, e.g. hello:latest")
	}
	repo, tag = ref[:i], ref[i+1:]
	if err := CheckRepoTag(repo, tag); err != nil {
		return "", "", err
	}
	return repo, tag, nil
}

func (c *Client) nameOpts() []name.Option {
	opts := []name.Option{name.StrictValidation}
	if c.plain {
		opts = append(opts, name.Insecure)
	}
	return opts
}

func (c *Client) remoteOpts(ctx context.Context) []remote.Option {
	return []remote.Option{remote.WithContext(ctx), remote.WithTransport(c.rt)}
}

// explain marks network failures as ErrUnreachable.
func (c *Client) explain(err error) error {
	var op *net.OpError
	if errors.As(err, &op) && op.Op == "dial" {
		return fmt.Errorf("%w: %s: %w", ErrUnreachable, c.base, err)
	}
	return err
}

// hostGuard refuses requests to any host but the hub's, and plain HTTP
// unless the hub's URL is http://.
type hostGuard struct {
	host      string
	allowHTTP bool
	next      http.RoundTripper
}

func (g *hostGuard) RoundTrip(req *http.Request) (*http.Response, error) {
	if req.URL.Host != g.host {
		return nil, fmt.Errorf("hub client: refusing a request to %s: only the hub %s is contacted", req.URL.Host, g.host)
	}
	if req.URL.Scheme != "https" && !g.allowHTTP {
		return nil, fmt.Errorf("hub client: refusing plain HTTP to %s: the hub URL is https", g.host)
	}
	return g.next.RoundTrip(req)
}
