package container

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	v1 "github.com/google/go-containerregistry/pkg/v1"
)

// blobStore is the image cache: content-addressed files
// blobs/sha256/<hex>, each written only after its content was verified
// against its digest, by rename, so a blob that exists is complete and
// right (a reader re-verifies what it trusts with more than its presence).
type blobStore struct{ dir string }

func (s blobStore) path(d v1.Hash) string { return filepath.Join(s.dir, d.Algorithm, d.Hex) }

// has reports whether the blob is cached.
func (s blobStore) has(d v1.Hash) bool {
	_, err := os.Stat(s.path(d))
	return err == nil
}

// read returns a small cached blob after checking its digest; a corrupt
// one is removed and reported as missing.
func (s blobStore) read(d v1.Hash, limit int64) ([]byte, bool, error) {
	b, err := readLimited(s.path(d), limit)
	if errors.Is(err, os.ErrNotExist) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, err
	}
	if got := sha256Hash(b); got != d {
		os.Remove(s.path(d))
		return nil, false, nil
	}
	return b, true, nil
}

// write stores r's content as blob d, reading at most limit bytes. It
// fails with ErrDigestMismatch when the content hashes to anything else,
// leaving nothing behind.
func (s blobStore) write(d v1.Hash, r io.Reader, limit int64) error {
	if d.Algorithm != "sha256" || len(d.Hex) != 64 {
		return fmt.Errorf("%w: digest %s is not sha256", ErrImage, d)
	}
	if err := os.MkdirAll(filepath.Join(s.dir, d.Algorithm), 0o700); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Join(s.dir, d.Algorithm), ".pull-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	h := sha256.New()
	n, err := io.Copy(io.MultiWriter(tmp, h), io.LimitReader(r, limit+1))
	if err == nil && n > limit {
		err = fmt.Errorf("%w: blob %s is larger than %d bytes", ErrImage, d, limit)
	}
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != d.String() {
		return fmt.Errorf("%w: blob %s arrived as %s", ErrDigestMismatch, d, got)
	}
	return os.Rename(tmp.Name(), s.path(d))
}

func sha256Hash(b []byte) v1.Hash {
	sum := sha256.Sum256(b)
	return v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(sum[:])}
}

func readLimited(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: %s is larger than %d bytes", ErrImage, filepath.Base(path), limit)
	}
	return b, nil
}

// parseDigest parses "sha256:<64 hex>".
func parseDigest(s string) (v1.Hash, error) {
	h, err := v1.NewHash(s)
	if err != nil || h.Algorithm != "sha256" || len(h.Hex) != 64 || strings.ToLower(h.Hex) != h.Hex {
		return v1.Hash{}, fmt.Errorf("%w: digest %q is not sha256:<64 lowercase hex>", ErrImage, s)
	}
	return h, nil
}
