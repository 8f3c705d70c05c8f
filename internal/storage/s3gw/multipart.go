package s3gw

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/johannesboyne/gofakes3"

	"github.com/zerogrid/zerogrid/internal/storage/catalog"
)

// Multipart uploads are spooled to disk, one file per part, and streamed
// into the store on completion, so that a gateway's memory does not grow
// with the parts in flight (gofakes3's own uploader keeps them in memory).

const (
	maxPartNumber = 10000   // S3's bound
	maxPartSize   = 5 << 30 // S3's bound
)

type spool struct {
	dir string
	mu  sync.Mutex
	ups map[gofakes3.UploadID]*upload
}

type upload struct {
	bucket, key string
	initiated   time.Time
	dir         string
	mu          sync.Mutex
	parts       map[int]part
}

type part struct {
	etag     string // hex SHA-256 of the part
	size     int64
	modified time.Time
}

var _ gofakes3.MultipartBackend = (*backend)(nil)

func (b *backend) CreateMultipartUpload(bucket, key string, _ map[string]string) (gofakes3.UploadID, error) {
	if ok, _ := b.BucketExists(bucket); !ok {
		return "", gofakes3.BucketNotFound(bucket)
	}
	if err := validKey(bucket, key); err != nil {
		return "", err
	}
	var raw [16]byte
	rand.Read(raw[:])
	id := gofakes3.UploadID(hex.EncodeToString(raw[:]))
	dir := filepath.Join(b.spool.dir, string(id))
	if err := os.Mkdir(dir, 0o700); err != nil {
		return "", b.fail("create multipart upload", bucket+"/"+key, err)
	}
	b.spool.mu.Lock()
	b.spool.ups[id] = &upload{bucket: bucket, key: key, initiated: b.now(), dir: dir, parts: map[int]part{}}
	b.spool.mu.Unlock()
	return id, nil
}

func (b *backend) upload(bucket, key string, id gofakes3.UploadID) (*upload, error) {
	b.spool.mu.Lock()
	defer b.spool.mu.Unlock()
	u := b.spool.ups[id]
	if u == nil || u.bucket != bucket || u.key != key {
		return nil, gofakes3.ErrNoSuchUpload
	}
	return u, nil
}

func (b *backend) UploadPart(bucket, key string, id gofakes3.UploadID, n int, size int64, input io.Reader) (string, error) {
	u, err := b.upload(bucket, key, id)
	if err != nil {
		return "", err
	}
	if n < 1 || n > maxPartNumber || size < 0 || size > maxPartSize {
		return "", gofakes3.ErrInvalidPart
	}
	f, err := os.CreateTemp(u.dir, "part-*.tmp")
	if err != nil {
		return "", b.fail("upload part", bucket+"/"+key, err)
	}
	h := sha256.New()
	got, err := io.Copy(io.MultiWriter(f, h), io.LimitReader(input, size+1))
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil && got != size {
		err = gofakes3.ErrIncompleteBody
	}
	if err == nil {
		err = os.Rename(f.Name(), partPath(u.dir, n))
	}
	if err != nil {
		os.Remove(f.Name())
		if gofakes3.HasErrorCode(err, gofakes3.ErrIncompleteBody) {
			return "", err
		}
		return "", b.fail("upload part", bucket+"/"+key, err)
	}
	etag := hex.EncodeToString(h.Sum(nil))
	u.mu.Lock()
	u.parts[n] = part{etag: etag, size: size, modified: b.now()}
	u.mu.Unlock()
	return `"` + etag + `"`, nil
}

func partPath(dir string, n int) string { return filepath.Join(dir, fmt.Sprintf("part-%05d", n)) }

func (b *backend) ListParts(bucket, key string, id gofakes3.UploadID, marker int, limit int64) (*gofakes3.ListMultipartUploadPartsResult, error) {
	u, err := b.upload(bucket, key, id)
	if err != nil {
		return nil, err
	}
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	res := &gofakes3.ListMultipartUploadPartsResult{Bucket: bucket, Key: key, UploadID: id, PartNumberMarker: marker, MaxParts: limit}
	u.mu.Lock()
	defer u.mu.Unlock()
	var nums []int
	for n := range u.parts {
		if n > marker {
			nums = append(nums, n)
		}
	}
	slices.Sort(nums)
	for i, n := range nums {
		if int64(i) == limit {
			res.IsTruncated = true
			break
		}
		p := u.parts[n]
		res.Parts = append(res.Parts, gofakes3.ListMultipartUploadPartItem{PartNumber: n, ETag: `"` + p.etag + `"`, Size: p.size, LastModified: gofakes3.NewContentTime(p.modified)})
		res.NextPartNumberMarker = n
	}
	return res, nil
}

func (b *backend) ListMultipartUploads(bucket string, marker *gofakes3.UploadListMarker, prefix gofakes3.Prefix, limit int64) (*gofakes3.ListMultipartUploadsResult, error) {
	if ok, _ := b.BucketExists(bucket); !ok {
		return nil, gofakes3.BucketNotFound(bucket)
	}
	if limit <= 0 || limit > 1000 {
		limit = 1000
	}
	res := &gofakes3.ListMultipartUploadsResult{Bucket: bucket, MaxUploads: limit, Prefix: prefix.Prefix}
	b.spool.mu.Lock()
	var items []gofakes3.ListMultipartUploadItem
	for id, u := range b.spool.ups {
		if u.bucket == bucket && strings.HasPrefix(u.key, prefix.Prefix) {
			items = append(items, gofakes3.ListMultipartUploadItem{Key: u.key, UploadID: id, Initiated: gofakes3.NewContentTime(u.initiated)})
		}
	}
	b.spool.mu.Unlock()
	slices.SortFunc(items, func(a, c gofakes3.ListMultipartUploadItem) int {
		return strings.Compare(a.Key+"\x00"+string(a.UploadID), c.Key+"\x00"+string(c.UploadID))
	})
	for _, it := range items {
		if marker != nil && (it.Key < marker.Object || it.Key == marker.Object && it.UploadID <= marker.UploadID) {
			continue
		}
		if int64(len(res.Uploads)) == limit {
			res.IsTruncated = true
			break
		}
		res.Uploads = append(res.Uploads, it)
		res.NextKeyMarker, res.NextUploadIDMarker = it.Key, it.UploadID
	}
	return res, nil
}

func (b *backend) AbortMultipartUpload(bucket, key string, id gofakes3.UploadID) error {
	u, err := b.upload(bucket, key, id)
	if err != nil {
		return err
	}
	b.spool.mu.Lock()
	delete(b.spool.ups, id)
	b.spool.mu.Unlock()
	return os.RemoveAll(u.dir)
}

// CompleteMultipartUpload streams the listed parts, in order, into the
// store as one object. The parts must be the ones uploaded (same numbers
// and entity tags) in ascending order.
func (b *backend) CompleteMultipartUpload(bucket, key string, id gofakes3.UploadID, in *gofakes3.CompleteMultipartUploadRequest) (gofakes3.VersionID, string, error) {
	u, err := b.upload(bucket, key, id)
	if err != nil {
		return "", "", err
	}
	u.mu.Lock()
	var readers []io.Reader
	var size int64
	h := sha256.New()
	for i, p := range in.Parts {
		have, ok := u.parts[p.PartNumber]
		switch {
		case i > 0 && p.PartNumber <= in.Parts[i-1].PartNumber:
			err = gofakes3.ErrInvalidPartOrder
		case !ok || strings.Trim(p.ETag, `"`) != have.etag:
			err = gofakes3.ErrorMessagef(gofakes3.ErrInvalidPart, "part %d was not uploaded with this entity tag", p.PartNumber)
		}
		if err != nil {
			break
		}
		f, ferr := os.Open(partPath(u.dir, p.PartNumber))
		if ferr != nil {
			err = b.fail("complete multipart upload", bucket+"/"+key, ferr)
			break
		}
		defer f.Close()
		readers = append(readers, f)
		size += have.size
		h.Write([]byte(have.etag))
	}
	u.mu.Unlock()
	if err == nil && len(readers) == 0 {
		err = gofakes3.ErrorMessage(gofakes3.ErrInvalidPart, "no parts listed")
	}
	if err != nil {
		return "", "", err
	}
	if _, err := b.PutObject(bucket, key, nil, io.MultiReader(readers...), size, nil); err != nil {
		return "", "", err
	}
	b.spool.mu.Lock()
	delete(b.spool.ups, id)
	b.spool.mu.Unlock()
	os.RemoveAll(u.dir)
	return "", fmt.Sprintf(`"%x-%d"`, h.Sum(nil), len(in.Parts)), nil
}

// validKey refuses an object key that is not a valid store name.
func validKey(bucket, key string) error {
	if err := catalog.ValidName(bucket + "/" + key); err != nil {
		return gofakes3.ErrorInvalidArgument("key", key, "not a valid store name: "+err.Error())
	}
	return nil
}
