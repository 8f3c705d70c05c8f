package hub

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"

	"github.com/zerogrid/zerogrid/internal/atomicfile"
)

// blobStore keeps blobs as content-addressed files, DIR/blobs/sha256/<hex>.
// It implements pkg/registry's BlobHandler, BlobStatHandler and
// BlobPutHandler; it has no Delete, so the registry refuses deletion.
//
// Blobs are global, not per repository: the repo argument is ignored, and a
// blob pushed through one repository can be read through any.
//
// All methods are safe for concurrent use. Put is idempotent: storing the
// same digest twice leaves one file with the same bytes. Every error of a
// missing blob wraps registry.ErrNotFound and ErrBlobUnknown.
type blobStore struct {
	dir string // DIR/blobs/sha256
	tmp string // DIR/uploads: same file system, so rename is atomic
	max int64  // largest blob accepted, in bytes
}

var (
	_ registry.BlobHandler     = (*blobStore)(nil)
	_ registry.BlobStatHandler = (*blobStore)(nil)
	_ registry.BlobPutHandler  = (*blobStore)(nil)
)

func (b *blobStore) path(h v1.Hash) string { return filepath.Join(b.dir, h.Hex) }

func (b *blobStore) notFound(h v1.Hash, err error) error {
	if errors.Is(err, fs.ErrNotExist) || h.Algorithm != "sha256" {
		return fmt.Errorf("blob %s: %w: %w", h, ErrBlobUnknown, registry.ErrNotFound)
	}
	return fmt.Errorf("blob %s: %w", h, err)
}

// Stat returns the size of the stored blob h. Contents were verified when
// they were stored; pullers verify them again.
func (b *blobStore) Stat(_ context.Context, _ string, h v1.Hash) (int64, error) {
	if h.Algorithm != "sha256" {
		return 0, b.notFound(h, nil)
	}
	fi, err := os.Stat(b.path(h))
	if err != nil {
		return 0, b.notFound(h, err)
	}
	return fi.Size(), nil
}

// Get opens the stored blob h. The *os.File it returns is an io.ReaderAt,
// which pkg/registry uses to serve range requests.
func (b *blobStore) Get(_ context.Context, _ string, h v1.Hash) (io.ReadCloser, error) {
	if h.Algorithm != "sha256" {
		return nil, b.notFound(h, nil)
	}
	f, err := os.Open(b.path(h))
	if err != nil {
		return nil, b.notFound(h, err)
	}
	return f, nil
}

// Put stores the bytes of rc under h if, and only if, they hash to h and
// are at most the size limit. The bytes stream to a temporary file while
// they are hashed; only a match is fsynced and renamed into place. A
// mismatch is ErrDigestMismatch, an oversized blob ErrTooLarge; in both
// cases nothing is stored.
func (b *blobStore) Put(_ context.Context, _ string, h v1.Hash, rc io.ReadCloser) error {
	defer rc.Close()
	if h.Algorithm != "sha256" {
		return fmt.Errorf("%w: only sha256 is supported, got %s", ErrDigestMismatch, h)
	}
	f, err := os.CreateTemp(b.tmp, "put-*")
	if err != nil {
		return err
	}
	w := &hashingWriter{f: f, h: sha256.New()}
	err = w.copyFrom(rc, b.max)
	if err == nil {
		err = w.check(h)
	}
	if err == nil {
		err = b.commit(f, h)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
	}
	return err
}

// putBytes stores data, which the caller hashed to h.
func (b *blobStore) putBytes(h v1.Hash, data []byte) error {
	return b.Put(context.Background(), "", h, io.NopCloser(bytes.NewReader(data)))
}

// readVerified returns the bytes of blob h after checking that they still
// hash to h. It is for manifests, which are small (they passed the size
// limit in force when they were pushed) and which the hub itself parses.
func (b *blobStore) readVerified(h v1.Hash) ([]byte, error) {
	if h.Algorithm != "sha256" {
		return nil, b.notFound(h, nil)
	}
	data, err := os.ReadFile(b.path(h))
	if err != nil {
		return nil, b.notFound(h, err)
	}
	if got := sha256.Sum256(data); hex.EncodeToString(got[:]) != h.Hex {
		return nil, fmt.Errorf("%w: %s: the file was altered on disk", ErrCorrupt, b.path(h))
	}
	return data, nil
}

// commit fsyncs and closes f, whose content hashed to h, and renames it to
// h's path. Renaming over an existing blob replaces it with identical bytes.
func (b *blobStore) commit(f *os.File, h v1.Hash) error {
	err := f.Chmod(fileMode)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := os.Rename(f.Name(), b.path(h)); err != nil {
		return err
	}
	return atomicfile.SyncDir(b.dir)
}

// hashingWriter appends to f and hashes what it appends. It carries the
// state of an upload across requests.
type hashingWriter struct {
	f    *os.File
	h    hash.Hash
	size int64
}

// copyFrom appends all of r, failing with ErrTooLarge as soon as the total
// would pass max. After an error the content is undefined.
func (w *hashingWriter) copyFrom(r io.Reader, max int64) error {
	n, err := io.Copy(io.MultiWriter(w.f, w.h), io.LimitReader(r, max-w.size+1))
	w.size += n
	if err != nil {
		return err
	}
	if w.size > max {
		return fmt.Errorf("%w: blob larger than %d bytes", ErrTooLarge, max)
	}
	return nil
}

// check compares the hash of everything appended with want.
func (w *hashingWriter) check(want v1.Hash) error {
	got := v1.Hash{Algorithm: "sha256", Hex: hex.EncodeToString(w.h.Sum(nil))}
	if got != want {
		return fmt.Errorf("%w: the %d bytes received hash to %s, not %s", ErrDigestMismatch, w.size, got, want)
	}
	return nil
}
