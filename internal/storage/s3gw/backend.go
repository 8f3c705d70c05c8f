package s3gw

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"strings"
	"time"

	"github.com/johannesboyne/gofakes3"

	"github.com/zerogrid/zerogrid/internal/storage"
	"github.com/zerogrid/zerogrid/internal/storage/catalog"
)

// Store is what the gateway needs of a store; *catalog.Store has it. Its
// methods must be safe for concurrent use.
type Store interface {
	Put(ctx context.Context, name string, r io.Reader, mode uint32, mtime time.Time) (catalog.PutResult, error)
	Lookup(name string) (catalog.Entry, bool)
	List(prefix string) []catalog.Entry
	Children(dir string) []catalog.Entry
	IsDir(name string) bool
	Remove(ctx context.Context, name string) error
	Mkdir(ctx context.Context, name string, mode uint32, mtime time.Time) error
	Rmdir(ctx context.Context, name string) error
	ReadSegment(ctx context.Context, ref storage.SegmentRef, dst []byte) ([]byte, error)
	SegmentSize() int
}

// backend is gofakes3's view of a store: buckets are top-level
// directories, objects the files below them.
type backend struct {
	ctx   context.Context // the server's lifetime: gofakes3 passes none per request
	s     Store
	log   *slog.Logger
	now   func() time.Time
	bufs  *bufPool
	spool *spool
}

var _ gofakes3.Backend = (*backend)(nil)

func (b *backend) ListBuckets() ([]gofakes3.BucketInfo, error) {
	var out []gofakes3.BucketInfo
	for _, e := range b.s.Children("") {
		if e.Dir {
			out = append(out, gofakes3.BucketInfo{Name: e.Name, CreationDate: gofakes3.NewContentTime(time.Unix(0, e.MTime))})
		}
	}
	return out, nil
}

func (b *backend) BucketExists(name string) (bool, error) {
	return name != "" && !strings.Contains(name, "/") && b.s.IsDir(name), nil
}

func (b *backend) CreateBucket(name string) error {
	if ok, _ := b.BucketExists(name); ok {
		return gofakes3.ResourceError(gofakes3.ErrBucketAlreadyExists, name)
	}
	if err := b.s.Mkdir(b.ctx, name, 0o755, b.now()); err != nil {
		return b.fail("create bucket", name, err)
	}
	return nil
}

func (b *backend) DeleteBucket(name string) error {
	if ok, _ := b.BucketExists(name); !ok {
		return gofakes3.BucketNotFound(name)
	}
	if len(b.s.List(name+"/")) > 0 {
		return gofakes3.ResourceError(gofakes3.ErrBucketNotEmpty, name)
	}
	if err := b.s.Rmdir(b.ctx, name); err != nil && !errors.Is(err, catalog.ErrNotFound) {
		return b.fail("delete bucket", name, err)
	}
	return nil
}

func (b *backend) ForceDeleteBucket(name string) error {
	if ok, _ := b.BucketExists(name); !ok {
		return gofakes3.BucketNotFound(name)
	}
	for _, e := range b.s.List(name + "/") {
		if !e.Dir {
			if err := b.s.Remove(b.ctx, e.Name); err != nil {
				return b.fail("delete", e.Name, err)
			}
		}
	}
	return b.DeleteBucket(name)
}

func (b *backend) ListBucket(bucket string, prefix *gofakes3.Prefix, page gofakes3.ListBucketPage) (*gofakes3.ObjectList, error) {
	if ok, _ := b.BucketExists(bucket); !ok {
		return nil, gofakes3.BucketNotFound(bucket)
	}
	if prefix == nil {
		prefix = &gofakes3.Prefix{}
	}
	list := gofakes3.NewObjectList()
	var match gofakes3.PrefixMatch
	var lastPrefix string
	var count int64
	entries := b.s.List(bucket + "/")
	for i, e := range entries {
		if e.Dir {
			continue
		}
		key := e.Name[len(bucket)+1:]
		if page.HasMarker && key <= page.Marker {
			continue
		}
		if !prefix.Match(key, &match) {
			continue
		}
		if match.CommonPrefix {
			if match.MatchedPart == lastPrefix {
				continue
			}
			list.AddPrefix(match.MatchedPart)
			lastPrefix = match.MatchedPart
		} else {
			list.Add(&gofakes3.Content{Key: key, LastModified: gofakes3.NewContentTime(time.Unix(0, e.MTime)),
				ETag: gofakes3.FormatETag(etag(e)), Size: e.Size})
		}
		count++
		if page.MaxKeys > 0 && count >= page.MaxKeys {
			list.NextMarker = key
			list.IsTruncated = i+1 < len(entries)
			break
		}
	}
	return list, nil
}

// lookup finds the object key of bucket.
func (b *backend) lookup(bucket, key string) (catalog.Entry, error) {
	if ok, _ := b.BucketExists(bucket); !ok {
		return catalog.Entry{}, gofakes3.BucketNotFound(bucket)
	}
	e, ok := b.s.Lookup(bucket + "/" + key)
	if !ok || e.Dir {
		return catalog.Entry{}, gofakes3.KeyNotFound(key)
	}
	return e, nil
}

func (b *backend) HeadObject(bucket, key string) (*gofakes3.Object, error) {
	e, err := b.lookup(bucket, key)
	if err != nil {
		return nil, err
	}
	return &gofakes3.Object{Name: key, Size: e.Size, Hash: etag(e), Metadata: meta(e), Contents: io.NopCloser(strings.NewReader(""))}, nil
}

func (b *backend) GetObject(bucket, key string, rng *gofakes3.ObjectRangeRequest) (*gofakes3.Object, error) {
	e, err := b.lookup(bucket, key)
	if err != nil {
		return nil, err
	}
	r, err := rng.Range(e.Size)
	if err != nil {
		return nil, err
	}
	start, end := int64(0), e.Size
	if r != nil {
		start, end = r.Start, r.Start+r.Length
	}
	return &gofakes3.Object{Name: key, Size: e.Size, Hash: etag(e), Metadata: meta(e), Range: r,
		Contents: newSegmentReader(b.ctx, b.bufs, b.s, e.Segments, start, end)}, nil
}

func (b *backend) PutObject(bucket, key string, _ map[string]string, input io.Reader, size int64, cond *gofakes3.PutConditions) (gofakes3.PutObjectResult, error) {
	if ok, _ := b.BucketExists(bucket); !ok {
		return gofakes3.PutObjectResult{}, gofakes3.BucketNotFound(bucket)
	}
	name := bucket + "/" + key
	if err := catalog.ValidName(name); err != nil {
		return gofakes3.PutObjectResult{}, gofakes3.ErrorInvalidArgument("key", key, "not a valid store name: "+err.Error())
	}
	if cond != nil {
		e, ok := b.s.Lookup(name)
		info := &gofakes3.ObjectInfo{Exists: ok && !e.Dir}
		if info.Exists {
			info.Hash = etag(e)
		}
		if err := gofakes3.CheckPutConditions(cond, info); err != nil {
			return gofakes3.PutObjectResult{}, err
		}
	}
	counted := &countingReader{r: input}
	if _, err := b.s.Put(b.ctx, name, counted, 0o644, b.now()); err != nil {
		return gofakes3.PutObjectResult{}, b.fail("put", name, err)
	}
	if counted.n != size {
		b.log.Warn("s3 put: body length differs from Content-Length", "name", name, "got", counted.n, "want", size)
	}
	return gofakes3.PutObjectResult{}, nil
}

func (b *backend) DeleteObject(bucket, key string) (gofakes3.ObjectDeleteResult, error) {
	if ok, _ := b.BucketExists(bucket); !ok {
		return gofakes3.ObjectDeleteResult{}, gofakes3.BucketNotFound(bucket)
	}
	err := b.s.Remove(b.ctx, bucket+"/"+key)
	if err != nil && !errors.Is(err, catalog.ErrNotFound) {
		return gofakes3.ObjectDeleteResult{}, b.fail("delete", bucket+"/"+key, err)
	}
	return gofakes3.ObjectDeleteResult{}, nil // S3 deletes a missing key successfully
}

func (b *backend) DeleteMulti(bucket string, keys ...string) (gofakes3.MultiDeleteResult, error) {
	var res gofakes3.MultiDeleteResult
	for _, k := range keys {
		if _, err := b.DeleteObject(bucket, k); err != nil {
			er := gofakes3.ErrorResultFromError(err)
			er.Key = k
			res.Error = append(res.Error, er)
			continue
		}
		res.Deleted = append(res.Deleted, gofakes3.ObjectID{Key: k})
	}
	return res, nil
}

func (b *backend) CopyObject(srcBucket, srcKey, dstBucket, dstKey string, meta map[string]string) (gofakes3.CopyObjectResult, error) {
	return gofakes3.CopyObject(b, srcBucket, srcKey, dstBucket, dstKey, meta)
}

// fail logs a store error and turns it into an S3 error that says what
// went wrong.
func (b *backend) fail(op, name string, err error) error {
	b.log.Warn("s3 "+op+" failed", "name", name, "err", err)
	switch {
	case errors.Is(err, catalog.ErrName), errors.Is(err, catalog.ErrIsDir), errors.Is(err, catalog.ErrNotDir),
		errors.Is(err, catalog.ErrNameTaken), errors.Is(err, catalog.ErrTooLarge):
		return gofakes3.ErrorInvalidArgument("key", name, err.Error())
	case errors.Is(err, ErrPayload):
		return gofakes3.ErrorMessage(gofakes3.ErrBadDigest, err.Error())
	}
	return gofakes3.ErrorMessage(gofakes3.ErrInternal, fmt.Sprintf("%s %s: %v", op, name, err))
}

// etag is the entity tag of a stored version: SHA-256 over a domain tag
// and its segments' ids and shard digests. It is 64 hex digits, so that no
// client takes it for an MD5 of the content (S3's convention); it changes
// whenever the object is written.
func etag(e catalog.Entry) []byte {
	h := sha256.New()
	h.Write([]byte("zerogrid s3 etag v1\x00"))
	for _, s := range e.Segments {
		h.Write(s.ID[:])
		for _, l := range s.Shards {
			h.Write(l.Digest[:])
		}
	}
	return h.Sum(nil)
}

func meta(e catalog.Entry) map[string]string {
	return map[string]string{"Last-Modified": time.Unix(0, e.MTime).UTC().Format(http.TimeFormat)}
}

type countingReader struct {
	r io.Reader
	n int64
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}
