package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

func TestCLIS3Keys(t *testing.T) {
	m := mnemonic(t)
	t.Setenv("ZGRID_MNEMONIC", m)
	out, _, err := run(t, "store", "s3-keys", "-o", "json")
	var a, b map[string]string
	if err != nil || json.Unmarshal([]byte(out), &a) != nil || len(a) != 2 || !strings.HasPrefix(a["access_key_id"], "ZG") || len(a["secret_access_key"]) != 40 {
		t.Fatalf("s3-keys -o json: %q %v", out, err)
	}
	out, _, _ = run(t, "store", "s3-keys", "-o", "json")
	json.Unmarshal([]byte(out), &b)
	if a["access_key_id"] != b["access_key_id"] || a["secret_access_key"] != b["secret_access_key"] {
		t.Fatal("the same mnemonic gave two key pairs")
	}
	t.Setenv("ZGRID_MNEMONIC", mnemonic(t))
	out, _, _ = run(t, "store", "s3-keys", "-o", "json")
	json.Unmarshal([]byte(out), &b)
	if a["access_key_id"] == b["access_key_id"] {
		t.Fatal("two mnemonics gave the same access key id")
	}
}

func TestCLIServeS3RefusesPlainHTTPBeyondLoopback(t *testing.T) {
	cfg, _ := storeConfig(t)
	t.Setenv("ZGRID_MNEMONIC", mnemonic(t))
	_, _, err := run(t, "store", "serve-s3", "--config", cfg, "--listen", "0.0.0.0:0")
	if err == nil || !strings.Contains(err.Error(), "--tls-cert") {
		t.Fatalf("serve-s3 on 0.0.0.0 without TLS: %v", err)
	}
	if _, _, err := run(t, "store", "serve-s3", "--config", cfg); err == nil || !strings.Contains(err.Error(), "--listen") {
		t.Fatalf("serve-s3 without --listen: %v", err)
	}
}

// TestCLIServeS3 runs serve-s3 as a user would: the keys s3-keys prints
// are accepted, a PUT is stored in the store and read back, and an
// interrupt stops the server.
func TestCLIServeS3(t *testing.T) {
	cfg, _ := storeConfig(t)
	t.Setenv("ZGRID_MNEMONIC", mnemonic(t))
	if _, _, err := run(t, "store", "init", "--config", cfg); err != nil {
		t.Fatal(err)
	}
	out, _, err := run(t, "store", "s3-keys", "-o", "json")
	var keys map[string]string
	if err != nil || json.Unmarshal([]byte(out), &keys) != nil {
		t.Fatalf("s3-keys: %q %v", out, err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	var stdout syncBuffer
	cmd := newRoot(&stdout, io.Discard)
	cmd.SetArgs([]string{"store", "serve-s3", "--config", cfg, "--listen", "127.0.0.1:0"})
	done := make(chan error, 1)
	go func() { done <- cmd.ExecuteContext(ctx) }()
	var base string
	for range 200 {
		if _, rest, ok := strings.Cut(stdout.String(), "serving S3 at "); ok {
			base, _, _ = strings.Cut(rest, " ")
			break
		}
		time.Sleep(25 * time.Millisecond)
	}
	if base == "" {
		t.Fatalf("serve-s3 did not start: %q", stdout.String())
	}
	creds := aws.Credentials{AccessKeyID: keys["access_key_id"], SecretAccessKey: keys["secret_access_key"]}
	send := func(method, path string, body []byte) (int, string) {
		req, _ := http.NewRequest(method, base+path, bytes.NewReader(body))
		sum := sha256.Sum256(body)
		h := hex.EncodeToString(sum[:])
		req.Header.Set("X-Amz-Content-Sha256", h)
		if err := v4.NewSigner().SignHTTP(ctx, creds, req, h, "s3", "us-east-1", time.Now()); err != nil {
			t.Fatal(err)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	if code, body := send("PUT", "/bkt", nil); code != 200 {
		t.Fatalf("create bucket: %d %s", code, body)
	}
	if code, body := send("PUT", "/bkt/hello.txt", []byte("hello, grid")); code != 200 {
		t.Fatalf("put: %d %s", code, body)
	}
	if code, body := send("GET", "/bkt/hello.txt", nil); code != 200 || body != "hello, grid" {
		t.Fatalf("get: %d %q", code, body)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatalf("serve-s3 after interrupt: %v", err)
	}
	// The object is an ordinary file of the store.
	dst := filepath.Join(t.TempDir(), "hello.txt")
	if _, _, err := run(t, "store", "get", "--config", cfg, "bkt/hello.txt", dst); err != nil {
		t.Fatal(err)
	}
	if b, _ := os.ReadFile(dst); string(b) != "hello, grid" {
		t.Fatalf("store get after S3 put: %q", b)
	}
}
