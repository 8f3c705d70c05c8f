package hub

import (
	"strconv"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// Limits of the distribution specification's grammar.
const (
	maxRepoLen  = 255
	maxTagLen   = 128
	uploadIDLen = 32 // hex of 16 random bytes
)

type routeKind int

const (
	routeBase        routeKind = iota + 1 // /v2/
	routeCatalog                          // /v2/_catalog
	routeManifest                         // /v2/<name>/manifests/<tag or digest>
	routeTags                             // /v2/<name>/tags/list
	routeBlob                             // /v2/<name>/blobs/<digest>
	routeUploadStart                      // /v2/<name>/blobs/uploads/
	routeUpload                           // /v2/<name>/blobs/uploads/<id>
)

// route is a parsed request path. Every field has been validated: repo
// against the repository grammar (so it is also a relative, local file
// path), ref as a tag or digest, digest as sha256.
type route struct {
	kind   routeKind
	repo   string
	tag    string  // routeManifest by tag
	digest v1.Hash // routeManifest by digest, routeBlob
	upload string  // routeUpload
}

// parseRoute parses the path of a distribution API request. The repository
// name may contain slashes, so the kind of request is read from the end of
// the path, as the specification's grammar requires.
func parseRoute(p string) (route, *apiError) {
	rest, ok := strings.CutPrefix(p, "/v2")
	switch {
	case !ok:
		return route{}, errNotFound()
	case rest == "" || rest == "/":
		return route{kind: routeBase}, nil
	case rest == "/_catalog":
		return route{kind: routeCatalog}, nil
	case !strings.HasPrefix(rest, "/"):
		return route{}, errNotFound()
	}
	e := strings.Split(strings.TrimSuffix(rest[1:], "/"), "/")
	n := len(e)
	if n < 3 {
		return route{}, errNotFound()
	}
	r := route{}
	var ref string
	switch {
	case e[n-2] == "manifests":
		r.kind, ref = routeManifest, e[n-1]
	case e[n-2] == "tags" && e[n-1] == "list":
		r.kind = routeTags
	case e[n-2] == "blobs" && e[n-1] == "uploads":
		r.kind = routeUploadStart
	case n >= 4 && e[n-3] == "blobs" && e[n-2] == "uploads":
		r.kind, ref = routeUpload, e[n-1]
		e = e[:n-1]
	case e[n-2] == "blobs":
		r.kind, ref = routeBlob, e[n-1]
	default:
		return route{}, errNotFound()
	}
	r.repo = strings.Join(e[:len(e)-2], "/")
	if !ValidRepo(r.repo) {
		return route{}, errNameInvalid(r.repo)
	}
	return r, r.setRef(ref)
}

// setRef validates the last element of the path for r's kind.
func (r *route) setRef(ref string) *apiError {
	switch r.kind {
	case routeManifest:
		if strings.Contains(ref, ":") {
			h, err := parseDigest(ref)
			r.digest = h
			return err
		}
		if !ValidTag(ref) {
			return errTagInvalid(ref)
		}
		r.tag = ref
	case routeBlob:
		h, err := parseDigest(ref)
		r.digest = h
		return err
	case routeUpload:
		if !validUploadID(ref) {
			return errUploadUnknown()
		}
		r.upload = ref
	}
	return nil
}

// parseDigest accepts only sha256 digests in their canonical form: lower-case
// hex, 64 digits. Other algorithms are refused rather than half supported.
func parseDigest(s string) (v1.Hash, *apiError) {
	hex, ok := strings.CutPrefix(s, "sha256:")
	if !ok {
		return v1.Hash{}, errDigestInvalid("only sha256 digests are supported: " + quoteShort(s))
	}
	if len(hex) != 64 || !isLowerHex(hex) {
		return v1.Hash{}, errDigestInvalid("a sha256 digest has 64 lower-case hex digits: " + quoteShort(s))
	}
	return v1.Hash{Algorithm: "sha256", Hex: hex}, nil
}

// ValidRepo reports whether name is a repository name of the distribution
// specification: path components of lower-case letters and digits, joined
// inside a component by ".", "_", "__" or runs of "-", at most 255 bytes.
// Such a name is also a safe relative file path: no component is empty,
// "." or "..", and none starts with "_", which the store uses for its own
// directories.
func ValidRepo(name string) bool {
	if name == "" || len(name) > maxRepoLen {
		return false
	}
	for c := range strings.SplitSeq(name, "/") {
		if !validComponent(c) {
			return false
		}
	}
	return true
}

func validComponent(c string) bool {
	if c == "" || !isAlnum(c[0]) || !isAlnum(c[len(c)-1]) {
		return false
	}
	for i := 0; i < len(c); {
		if isAlnum(c[i]) {
			i++
			continue
		}
		j := i
		for j < len(c) && !isAlnum(c[j]) {
			j++
		}
		sep := c[i:j]
		if sep != "." && sep != "_" && sep != "__" && strings.Trim(sep, "-") != "" {
			return false
		}
		i = j
	}
	return true
}

// ValidTag reports whether tag matches [a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}.
// Such a tag is also a safe file name: it cannot be "." or "..".
func ValidTag(tag string) bool {
	if tag == "" || len(tag) > maxTagLen || tag[0] == '.' || tag[0] == '-' {
		return false
	}
	for i := 0; i < len(tag); i++ {
		c := tag[i]
		if !isAlnum(c) && !(c >= 'A' && c <= 'Z') && c != '_' && c != '.' && c != '-' {
			return false
		}
	}
	return true
}

func validUploadID(id string) bool { return len(id) == uploadIDLen && isLowerHex(id) }

func isAlnum(c byte) bool { return (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') }

func isLowerHex(s string) bool {
	for i := 0; i < len(s); i++ {
		if !((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')) {
			return false
		}
	}
	return true
}

// quoteShort quotes untrusted input for an error message, cut to 80 bytes.
func quoteShort(s string) string {
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return strconv.Quote(s)
}
