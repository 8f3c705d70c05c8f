package s3gw

import (
	"bytes"
	"log/slog"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/johannesboyne/gofakes3"
)

func TestMultipartChecksParts(t *testing.T) {
	t.Parallel()
	g := newGateway(t)
	b := &backend{ctx: t.Context(), s: g.store, log: slog.New(slog.DiscardHandler), now: time.Now,
		bufs: &bufPool{size: 1 << 20}, spool: &spool{dir: t.TempDir(), ups: map[gofakes3.UploadID]*upload{}}}
	if err := b.CreateBucket("bkt"); err != nil {
		t.Fatal(err)
	}
	if _, err := b.CreateMultipartUpload("bkt", "a/../b", nil); err == nil {
		t.Fatal("an invalid key was accepted")
	}
	id, err := b.CreateMultipartUpload("bkt", "obj", nil)
	if err != nil {
		t.Fatal(err)
	}
	e1, err := b.UploadPart("bkt", "obj", id, 1, 3, strings.NewReader("abc"))
	if err != nil {
		t.Fatal(err)
	}
	e2, _ := b.UploadPart("bkt", "obj", id, 2, 3, strings.NewReader("def"))
	if _, err := b.UploadPart("bkt", "obj", id, 3, 5, strings.NewReader("gh")); !gofakes3.HasErrorCode(err, gofakes3.ErrIncompleteBody) {
		t.Fatalf("short part: %v", err)
	}
	if _, err := b.UploadPart("bkt", "other", id, 1, 1, strings.NewReader("x")); !gofakes3.HasErrorCode(err, gofakes3.ErrNoSuchUpload) {
		t.Fatalf("part for another key: %v", err)
	}
	for name, parts := range map[string][]gofakes3.CompletedPart{
		"wrong etag":  {{PartNumber: 1, ETag: e2}, {PartNumber: 2, ETag: e2}},
		"wrong order": {{PartNumber: 2, ETag: e2}, {PartNumber: 1, ETag: e1}},
		"missing":     {{PartNumber: 1, ETag: e1}, {PartNumber: 3, ETag: e1}},
		"none":        {},
	} {
		if _, _, err := b.CompleteMultipartUpload("bkt", "obj", id, &gofakes3.CompleteMultipartUploadRequest{Parts: parts}); err == nil {
			t.Fatalf("complete with %s parts succeeded", name)
		}
	}
	lp, err := b.ListParts("bkt", "obj", id, 0, 0)
	if err != nil || len(lp.Parts) != 2 || lp.Parts[0].ETag != e1 {
		t.Fatalf("list parts: %+v %v", lp, err)
	}
	if _, _, err := b.CompleteMultipartUpload("bkt", "obj", id, &gofakes3.CompleteMultipartUploadRequest{
		Parts: []gofakes3.CompletedPart{{PartNumber: 1, ETag: e1}, {PartNumber: 2, ETag: e2}}}); err != nil {
		t.Fatal(err)
	}
	o, err := b.GetObject("bkt", "obj", nil)
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	got.ReadFrom(o.Contents)
	o.Contents.Close()
	if got.String() != "abcdef" {
		t.Fatalf("object %q", got.String())
	}
	// Abort removes the parts.
	id2, _ := b.CreateMultipartUpload("bkt", "obj2", nil)
	b.UploadPart("bkt", "obj2", id2, 1, 1, strings.NewReader("x"))
	ups, _ := b.ListMultipartUploads("bkt", nil, gofakes3.Prefix{}, 0)
	if len(ups.Uploads) != 1 || ups.Uploads[0].UploadID != id2 {
		t.Fatalf("uploads in progress: %+v", ups.Uploads)
	}
	if err := b.AbortMultipartUpload("bkt", "obj2", id2); err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(b.spool.dir); len(left) != 0 {
		t.Fatalf("spool not empty after complete and abort: %d", len(left))
	}
}
