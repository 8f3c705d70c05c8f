package s3gw

import (
	"bytes"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

// chunked encodes data as a signed chunked body (the layout restic's
// minio-go sends; TestRestic checks the real thing).
func chunked(key []byte, amzDate, scope, seed string, data []byte, size int) []byte {
	var b bytes.Buffer
	prev := seed
	for {
		n := min(size, len(data))
		chunk := data[:n]
		data = data[n:]
		sig := hex.EncodeToString(hmacSHA256(key, chunkAlgorithm+"\n"+amzDate+"\n"+scope+"\n"+prev+"\n"+emptySHA256+"\n"+sha256Hex(chunk)))
		fmt.Fprintf(&b, "%x;chunk-signature=%s\r\n", n, sig)
		b.Write(chunk)
		b.WriteString("\r\n")
		prev = sig
		if n == 0 {
			return b.Bytes()
		}
	}
}

func TestChunkReader(t *testing.T) {
	t.Parallel()
	key := bytes.Repeat([]byte{7}, 32)
	const date, scope = "20260101T000000Z", "20260101/us-east-1/s3/aws4_request"
	seed := strings.Repeat("ab", 32)
	data := bytes.Repeat([]byte("0123456789"), 20_000)
	body := chunked(key, date, scope, seed, data, 64<<10)
	read := func(b []byte, declared int64, seed string) ([]byte, error) {
		return io.ReadAll(newChunkReader(bytes.NewReader(b), key, date, scope, seed, declared))
	}
	if got, err := read(body, int64(len(data)), seed); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("valid body: %v", err)
	}
	flip := func(at int) []byte { b := bytes.Clone(body); b[at] ^= 1; return b }
	dataAt := bytes.Index(body, []byte("\r\n")) + 2
	for name, tc := range map[string]struct {
		body     []byte
		declared int64
		seed     string
	}{
		"a data byte flipped":       {flip(dataAt + 100), int64(len(data)), seed},
		"a signature byte flipped":  {flip(dataAt - 5), int64(len(data)), seed},
		"another request's seed":    {body, int64(len(data)), strings.Repeat("cd", 32)},
		"cut before the last chunk": {body[:len(body)-90], int64(len(data)), seed},
		"longer than declared":      {body, int64(len(data)) - 1, seed},
		"shorter than declared":     {body, int64(len(data)) + 1, seed},
		"chunks reordered": {func() []byte {
			// swap the first two chunks (both 64 KiB)
			c := 64<<10 + dataAt + 2
			return append(append(bytes.Clone(body[c:2*c]), body[:c]...), body[2*c:]...)
		}(), int64(len(data)), seed},
	} {
		got, err := read(tc.body, tc.declared, tc.seed)
		if !errors.Is(err, ErrPayload) {
			t.Errorf("%s: %v, want ErrPayload", name, err)
		}
		if len(got) > 0 && !bytes.Equal(got, data[:len(got)]) {
			t.Errorf("%s: passed on bytes that were not verified", name)
		}
	}
}

func FuzzChunkReader(f *testing.F) {
	key := bytes.Repeat([]byte{7}, 32)
	const date, scope = "20260101T000000Z", "20260101/us-east-1/s3/aws4_request"
	seed := strings.Repeat("ab", 32)
	f.Add(chunked(key, date, scope, seed, []byte("hello world"), 4), int64(11))
	f.Add([]byte("0;chunk-signature=\r\n\r\n"), int64(0))
	f.Add([]byte("fffffffff;chunk-signature=00\r\n"), int64(1<<40))
	f.Fuzz(func(t *testing.T, body []byte, declared int64) {
		got, err := io.ReadAll(newChunkReader(bytes.NewReader(body), key, date, scope, seed, declared))
		if err == nil && int64(len(got)) != declared {
			t.Fatalf("accepted %d bytes, %d declared", len(got), declared)
		}
	})
}

func FuzzParseAuthorization(f *testing.F) {
	f.Add("AWS4-HMAC-SHA256 Credential=ZGAAAA/20260101/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-content-sha256;x-amz-date, Signature=" + strings.Repeat("0", 64))
	f.Add("AWS4-HMAC-SHA256 Credential=a/b/c/d/e,SignedHeaders=;,Signature=zz")
	f.Add("AWS AKID:sig")
	f.Fuzz(func(t *testing.T, h string) {
		a, err := parseAuthorization(h)
		if err != nil {
			return
		}
		if len(a.signature) != 32 || a.accessKey == "" || a.service != "s3" || len(a.signedHeaders) == 0 {
			t.Fatalf("accepted a malformed header: %q → %+v", h, a)
		}
	})
}
