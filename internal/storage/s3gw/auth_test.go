package s3gw

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// signed builds a request signed by the AWS SDK's own signer (an
// implementation independent of ours), with the path escaped as S3
// clients escape it.
func signed(t *testing.T, c Credentials, method, base, key, query string, body []byte, payload string, at time.Time) *http.Request {
	t.Helper()
	u, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	u.RawPath = uriEncode(key, false)
	u.Path = key
	u.RawQuery = query
	req, err := http.NewRequest(method, u.String(), bytes.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	if payload == "" {
		sum := sha256.Sum256(body)
		payload = hex.EncodeToString(sum[:])
	}
	req.Header.Set("X-Amz-Content-Sha256", payload)
	err = v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true }).SignHTTP(context.Background(),
		aws.Credentials{AccessKeyID: c.AccessKeyID, SecretAccessKey: c.SecretAccessKey}, req, payload, "s3", "us-east-1", at)
	if err != nil {
		t.Fatal(err)
	}
	return req
}

func do(t *testing.T, req *http.Request) (int, string) {
	t.Helper()
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func TestSignedRequestsRoundTrip(t *testing.T) {
	t.Parallel()
	g := newGateway(t)
	now := time.Now()
	if code, body := do(t, signed(t, g.creds, "PUT", g.url, "/bkt", "", nil, "", now)); code != 200 {
		t.Fatalf("create bucket: %d %s", code, body)
	}
	data := bytes.Repeat([]byte("zerogrid "), 300_000) // 2.7 MB: three segments
	for i, tc := range []struct{ key, payload string }{
		{"/bkt/plain.bin", ""},
		{"/bkt/dir/with space (1)!+é.bin", ""},
		{"/bkt/unsigned.bin", unsignedPayload},
	} {
		if code, body := do(t, signed(t, g.creds, "PUT", g.url, tc.key, "", data[i:], tc.payload, now)); code != 200 {
			t.Fatalf("put %s: %d %s", tc.key, code, body)
		}
		code, body := do(t, signed(t, g.creds, "GET", g.url, tc.key, "", nil, "", now))
		if code != 200 || body != string(data[i:]) {
			t.Fatalf("get %s: %d, %d bytes", tc.key, code, len(body))
		}
	}
	// A range across a segment boundary.
	req := signed(t, g.creds, "GET", g.url, "/bkt/plain.bin", "", nil, "", now)
	req.Header.Set("Range", "bytes=1048000-1049999")
	if code, body := do(t, req); code != 206 || body != string(data[1048000:1050000]) {
		t.Fatalf("ranged get: %d, %d bytes", code, len(body))
	}
	// Listing with query parameters that need encoding.
	code, body := do(t, signed(t, g.creds, "GET", g.url, "/bkt", "list-type=2&prefix=dir%2Fwith%20space&delimiter=%2F", nil, "", now))
	if code != 200 || !strings.Contains(body, "<Key>dir/with space (1)!+é.bin</Key>") {
		t.Fatalf("list: %d %s", code, body)
	}
}

func TestBadRequestsAreRefused(t *testing.T) {
	t.Parallel()
	g := newGateway(t)
	now := time.Now()
	if code, body := do(t, signed(t, g.creds, "PUT", g.url, "/bkt", "", nil, "", now)); code != 200 {
		t.Fatalf("create bucket: %d %s", code, body)
	}
	other, err := DeriveCredentials(storageSecret(t))
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, code string
		req        func() *http.Request
	}{
		{"no signature", "AccessDenied", func() *http.Request {
			r, _ := http.NewRequest("GET", g.url+"/bkt", nil)
			return r
		}},
		{"another user's key", "InvalidAccessKeyId", func() *http.Request {
			return signed(t, other, "GET", g.url, "/bkt", "", nil, "", now)
		}},
		{"wrong secret", "SignatureDoesNotMatch", func() *http.Request {
			return signed(t, Credentials{AccessKeyID: g.creds.AccessKeyID, SecretAccessKey: other.SecretAccessKey}, "GET", g.url, "/bkt", "", nil, "", now)
		}},
		{"path changed after signing", "SignatureDoesNotMatch", func() *http.Request {
			r := signed(t, g.creds, "GET", g.url, "/bkt/a", "", nil, "", now)
			r.URL.Path, r.URL.RawPath = "/bkt/b", ""
			return r
		}},
		{"method changed after signing", "SignatureDoesNotMatch", func() *http.Request {
			r := signed(t, g.creds, "GET", g.url, "/bkt/a", "", nil, "", now)
			r.Method = "DELETE"
			return r
		}},
		{"query changed after signing", "SignatureDoesNotMatch", func() *http.Request {
			r := signed(t, g.creds, "GET", g.url, "/bkt", "prefix=a", nil, "", now)
			r.URL.RawQuery = "prefix=b"
			return r
		}},
		{"signed header changed", "SignatureDoesNotMatch", func() *http.Request {
			r := signed(t, g.creds, "GET", g.url, "/bkt", "", nil, "", now)
			r.Header.Set("X-Amz-Date", now.Add(time.Second).UTC().Format(amzDateFormat))
			return r
		}},
		{"too old", "RequestTimeTooSkewed", func() *http.Request {
			return signed(t, g.creds, "GET", g.url, "/bkt", "", nil, "", now.Add(-16*time.Minute))
		}},
		{"from the future", "RequestTimeTooSkewed", func() *http.Request {
			return signed(t, g.creds, "GET", g.url, "/bkt", "", nil, "", now.Add(16*time.Minute))
		}},
		{"presigned", "AccessDenied", func() *http.Request {
			return signed(t, g.creds, "GET", g.url, "/bkt", "X-Amz-Signature=00", nil, "", now)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			code, body := do(t, tc.req())
			if code != http.StatusForbidden || !strings.Contains(body, "<Code>"+tc.code+"</Code>") {
				t.Fatalf("got %d %s, want 403 %s", code, body, tc.code)
			}
		})
	}
}

func TestBodyMustMatchItsSignedHash(t *testing.T) {
	t.Parallel()
	g := newGateway(t)
	now := time.Now()
	do(t, signed(t, g.creds, "PUT", g.url, "/bkt", "", nil, "", now))
	req := signed(t, g.creds, "PUT", g.url, "/bkt/x", "", []byte("signed body"), "", now)
	req.Body = io.NopCloser(strings.NewReader("forged body"))
	if code, body := do(t, req); code < 400 {
		t.Fatalf("a body that differs from its signed hash was accepted: %d %s", code, body)
	}
	if _, ok := g.store.Lookup("bkt/x"); ok {
		t.Fatal("the forged body was stored")
	}
}

func TestReplayedWriteIsRefused(t *testing.T) {
	t.Parallel()
	g := newGateway(t)
	now := time.Now()
	do(t, signed(t, g.creds, "PUT", g.url, "/bkt", "", nil, "", now))
	put := signed(t, g.creds, "PUT", g.url, "/bkt/x", "", []byte("v1"), "", now)
	again := put.Clone(context.Background())
	again.Body = io.NopCloser(strings.NewReader("v1"))
	if code, body := do(t, put); code != 200 {
		t.Fatalf("put: %d %s", code, body)
	}
	if code, body := do(t, again); code != http.StatusForbidden || !strings.Contains(body, "replayed") {
		t.Fatalf("replayed put: %d %s", code, body)
	}
	get := signed(t, g.creds, "GET", g.url, "/bkt/x", "", nil, "", now)
	if code, _ := do(t, get); code != 200 {
		t.Fatal("get failed")
	}
	if code, _ := do(t, get.Clone(context.Background())); code != 200 {
		t.Fatal("a repeated GET (safe, idempotent) was refused")
	}
}

func TestCredentialsAreDerivedPerUser(t *testing.T) {
	t.Parallel()
	s := storageSecret(t)
	a, _ := DeriveCredentials(s)
	b, _ := DeriveCredentials(bytes.Clone(s))
	c, _ := DeriveCredentials(storageSecret(t))
	if a != b || a.AccessKeyID == c.AccessKeyID || a.SecretAccessKey == c.SecretAccessKey {
		t.Fatal("credentials are not a function of the storage secret alone")
	}
	if !strings.HasPrefix(a.AccessKeyID, "ZG") || len(a.AccessKeyID) != 26 || len(a.SecretAccessKey) != 40 {
		t.Fatalf("credential shape: %d, %d", len(a.AccessKeyID), len(a.SecretAccessKey))
	}
	for _, p := range []string{fmt.Sprint(a), fmt.Sprintf("%v %+v %#v %s", a, a, a, a)} {
		if strings.Contains(p, a.SecretAccessKey) {
			t.Fatalf("credentials print their secret: %q", p)
		}
	}
	if _, err := DeriveCredentials(s[:16]); err == nil {
		t.Fatal("a short storage secret was accepted")
	}
	_ = errors.New
}
