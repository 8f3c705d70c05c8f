package hub

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"mime"
	"os"
	"path/filepath"
	"slices"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/types"
)

// manifestStore keeps manifests: their bytes in the blob store, under their
// digest, and per repository a link file for each manifest pushed to it
// (holding its media type) and a file per tag (holding a digest). See
// layout.go. Safe for concurrent use: every file is written atomically, a
// manifest's bytes before its link and its link before a tag that names it,
// so a reader never finds a tag or link whose target is missing.
type manifestStore struct {
	repos string // DIR/repos
	blobs *blobStore
	max   int64 // largest manifest accepted, in bytes
}

// manifestTypes are the manifest media types the hub accepts.
func manifestTypes() []types.MediaType {
	return []types.MediaType{types.OCIManifestSchema1, types.OCIImageIndex, types.DockerManifestSchema2, types.DockerManifestList}
}

func (m *manifestStore) repoDir(repo string) string {
	return filepath.Join(m.repos, filepath.FromSlash(repo))
}

func (m *manifestStore) linkPath(repo string, h v1.Hash) string {
	return filepath.Join(m.repoDir(repo), filepath.FromSlash(manifestsDir), h.Hex)
}

func (m *manifestStore) tagPath(repo, tag string) string {
	return filepath.Join(m.repoDir(repo), tagsDir, tag)
}

// put validates body and stores it in repo, under its digest and, if tag
// is not empty, under tag. want, if not zero, is the digest the client
// named in the URL; the body must hash to it.
func (m *manifestStore) put(repo, tag string, want v1.Hash, contentType string, body []byte) (v1.Hash, error) {
	sum := sha256.Sum256(body)
	h := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
	if want != (v1.Hash{}) && want != h {
		return v1.Hash{}, errDigestInvalid(fmt.Sprintf("manifest hashes to %s, not %s", h, want))
	}
	mt, err := checkManifest(contentType, body, refChecker{m, repo})
	if err != nil {
		return v1.Hash{}, err
	}
	if err := m.blobs.putBytes(h, body); err != nil {
		return v1.Hash{}, err
	}
	if old, err := os.ReadFile(m.linkPath(repo, h)); err != nil || string(old) != string(mt)+"\n" {
		if err := writeFileAtomic(m.linkPath(repo, h), []byte(string(mt)+"\n")); err != nil {
			return v1.Hash{}, err
		}
	}
	if tag != "" {
		if err := writeFileAtomic(m.tagPath(repo, tag), []byte(h.String()+"\n")); err != nil {
			return v1.Hash{}, err
		}
	}
	return h, nil
}

// resolve finds the digest and media type of a manifest of r.repo named by
// r.tag or r.digest.
func (m *manifestStore) resolve(r route) (v1.Hash, types.MediaType, error) {
	if _, err := os.Stat(filepath.Join(m.repoDir(r.repo), filepath.FromSlash(manifestsDir))); err != nil {
		return v1.Hash{}, "", errNameUnknown(r.repo)
	}
	h := r.digest
	if r.tag != "" {
		b, err := os.ReadFile(m.tagPath(r.repo, r.tag))
		if errors.Is(err, fs.ErrNotExist) {
			return v1.Hash{}, "", errManifestUnknown(r.tag)
		} else if err != nil {
			return v1.Hash{}, "", err
		}
		var aerr *apiError
		if h, aerr = parseDigest(strings.TrimSpace(string(b))); aerr != nil {
			return v1.Hash{}, "", fmt.Errorf("tag file %s: %s", m.tagPath(r.repo, r.tag), aerr.msg)
		}
	}
	mt, err := m.mediaType(r.repo, h)
	if err != nil {
		return v1.Hash{}, "", err
	}
	return h, mt, nil
}

// mediaType reads the link of manifest h in repo.
func (m *manifestStore) mediaType(repo string, h v1.Hash) (types.MediaType, error) {
	b, err := os.ReadFile(m.linkPath(repo, h))
	if errors.Is(err, fs.ErrNotExist) {
		return "", errManifestUnknown(h.String())
	} else if err != nil {
		return "", err
	}
	return types.MediaType(strings.TrimSpace(string(b))), nil
}

// get returns the bytes of the manifest r names, verified against its
// digest.
func (m *manifestStore) get(r route) ([]byte, v1.Hash, types.MediaType, error) {
	h, mt, err := m.resolve(r)
	if err != nil {
		return nil, v1.Hash{}, "", err
	}
	b, err := m.blobs.readVerified(h)
	if err != nil {
		return nil, v1.Hash{}, "", err
	}
	return b, h, mt, nil
}

// tags lists the tags of repo, sorted.
func (m *manifestStore) tags(repo string) ([]string, error) {
	if _, err := os.Stat(filepath.Join(m.repoDir(repo), filepath.FromSlash(manifestsDir))); err != nil {
		return nil, errNameUnknown(repo)
	}
	ents, err := os.ReadDir(filepath.Join(m.repoDir(repo), tagsDir))
	if err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, err
	}
	tags := []string{}
	for _, e := range ents {
		if ValidTag(e.Name()) && e.Type().IsRegular() {
			tags = append(tags, e.Name())
		}
	}
	slices.Sort(tags)
	return tags, nil
}

// repoNames lists the repositories that hold at least one manifest, sorted.
func (m *manifestStore) repoNames() ([]string, error) {
	var names []string
	err := filepath.WalkDir(m.repos, func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if strings.HasPrefix(d.Name(), "_") {
			if d.Name() == "_manifests" {
				rel, _ := filepath.Rel(m.repos, filepath.Dir(p))
				names = append(names, filepath.ToSlash(rel))
			}
			return fs.SkipDir
		}
		return nil
	})
	slices.Sort(names)
	return names, err
}

// refChecker answers, for checkManifest, whether what a manifest references
// is stored.
type refChecker struct {
	m    *manifestStore
	repo string
}

type references interface {
	// blob checks that blob d is stored with size d.Size.
	blob(d v1.Descriptor) error
	// manifest checks that manifest d was pushed to this repository, with
	// size d.Size.
	manifest(d v1.Descriptor) error
}

func (c refChecker) blob(d v1.Descriptor) error {
	size, err := c.m.blobs.Stat(context.Background(), "", d.Digest)
	if errors.Is(err, ErrBlobUnknown) {
		return errManifestBlobUnknown(fmt.Sprintf("blob %s is not stored: push it before the manifest", d.Digest))
	} else if err != nil {
		return err
	}
	if size != d.Size {
		return errManifestInvalid(fmt.Sprintf("blob %s has %d bytes, the manifest says %d", d.Digest, size, d.Size))
	}
	return nil
}

func (c refChecker) manifest(d v1.Descriptor) error {
	if _, err := c.m.mediaType(c.repo, d.Digest); err != nil {
		var aerr *apiError
		if errors.As(err, &aerr) {
			return errManifestBlobUnknown(fmt.Sprintf("manifest %s is not in repository %s: push it before the index", d.Digest, c.repo))
		}
		return err
	}
	return c.blob(d)
}

// checkManifest validates an uploaded manifest and returns its media type:
// JSON of a supported media type, schema version 2, the Content-Type and the
// body's mediaType field agreeing, sha256 digests only, and every blob or
// manifest it references stored (blobs that are not distributable, such as
// foreign layers, excepted).
func checkManifest(contentType string, body []byte, refs references) (types.MediaType, error) {
	mt, err := manifestMediaType(contentType, body)
	if err != nil {
		return "", err
	}
	if mt.IsIndex() {
		return mt, checkIndex(body, refs)
	}
	mf, perr := v1.ParseManifest(bytes.NewReader(body))
	if perr != nil {
		return "", errManifestInvalid("not an image manifest: " + perr.Error())
	}
	for _, d := range append([]v1.Descriptor{mf.Config}, mf.Layers...) {
		if _, aerr := parseDigest(d.Digest.String()); aerr != nil {
			return "", errManifestInvalid("descriptor digest: " + aerr.msg)
		}
		if !d.MediaType.IsDistributable() {
			continue
		}
		if err := refs.blob(d); err != nil {
			return "", err
		}
	}
	return mt, nil
}

func checkIndex(body []byte, refs references) error {
	im, err := v1.ParseIndexManifest(bytes.NewReader(body))
	if err != nil {
		return errManifestInvalid("not an image index: " + err.Error())
	}
	for _, d := range im.Manifests {
		if _, aerr := parseDigest(d.Digest.String()); aerr != nil {
			return errManifestInvalid("descriptor digest: " + aerr.msg)
		}
		if !slices.Contains(manifestTypes(), d.MediaType) {
			return errManifestInvalid(fmt.Sprintf("index entry %s has media type %q: an index lists manifests", d.Digest, d.MediaType))
		}
		if err := refs.manifest(d); err != nil {
			return err
		}
	}
	return nil
}

// manifestMediaType decides the media type of an upload from its
// Content-Type and its mediaType field, which must agree when both are set.
func manifestMediaType(contentType string, body []byte) (types.MediaType, error) {
	var head struct {
		SchemaVersion int    `json:"schemaVersion"`
		MediaType     string `json:"mediaType"`
	}
	if err := json.Unmarshal(body, &head); err != nil {
		return "", errManifestInvalid("manifest is not a JSON object: " + err.Error())
	}
	if head.SchemaVersion != 2 {
		return "", errManifestInvalid(fmt.Sprintf("schemaVersion is %d: only version 2 manifests are supported", head.SchemaVersion))
	}
	mt := head.MediaType
	if contentType != "" {
		ct, _, err := mime.ParseMediaType(contentType)
		if err != nil {
			return "", errManifestInvalid("bad Content-Type: " + err.Error())
		}
		if mt != "" && mt != ct {
			return "", errManifestInvalid(fmt.Sprintf("Content-Type %q differs from the manifest's mediaType %q", ct, mt))
		}
		mt = ct
	}
	if !slices.Contains(manifestTypes(), types.MediaType(mt)) {
		return "", errManifestInvalid(fmt.Sprintf("media type %q is not a supported manifest type (OCI or Docker schema 2 manifest or index)", mt))
	}
	return types.MediaType(mt), nil
}
