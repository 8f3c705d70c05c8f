package identity

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// encodeTest makes a key file's bytes at test cost.
func encodeTest(t testing.TB, kf *KeyFile, cipher string) []byte {
	t.Helper()
	b, err := encryptKeyFile(kf, testPass, testOpts(cipher))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// edit decodes a key file as generic JSON, applies f, and encodes it again.
func edit(t testing.TB, data []byte, f func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	f(m)
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func kdfField(k string, v any) func(map[string]any) {
	return func(m map[string]any) { m["kdf"].(map[string]any)[k] = v }
}

// TestKeyFileHeaderBound changes header fields that do not affect the
// derived key: only the associated data can notice, and it must.
func TestKeyFileHeaderBound(t *testing.T) {
	t.Parallel()
	data := encodeTest(t, deviceKeyFile(t), cipherXChaCha)
	other := testKey(t, 7).Public().String()
	tests := []struct {
		name string
		f    func(map[string]any)
	}{
		{"kind", func(m map[string]any) { m["kind"] = "root" }},
		{"public", func(m map[string]any) { m["public"] = other }},
		{"created", func(m map[string]any) { m["created"] = "2001-02-03T04:05:06Z" }},
		{"ciphertext", func(m map[string]any) {
			ct, _ := base64.StdEncoding.DecodeString(m["ciphertext"].(string))
			ct[0] ^= 1
			m["ciphertext"] = ct
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if _, err := decryptKeyFile(edit(t, data, tc.f), testPass); !errors.Is(err, ErrWrongPassphrase) {
				t.Fatalf("got %v, want ErrWrongPassphrase", err)
			}
		})
	}
	if _, err := decryptKeyFile(edit(t, data, func(map[string]any) {}), testPass); err != nil {
		t.Fatalf("re-encoding alone broke the file: %v", err)
	}
}

// TestParseKeyFile covers what is refused before any KDF runs.
func TestParseKeyFile(t *testing.T) {
	t.Parallel()
	data := encodeTest(t, nodeKeyFile(t), cipherXChaCha)
	tests := []struct {
		name string
		data []byte
		want error
		msg  string
	}{
		{"valid", data, nil, ""},
		{"not json", []byte("-----BEGIN PRIVATE KEY-----"), ErrKeyFileFormat, "not a zerogrid key file"},
		{"no version", []byte(`{"kind":"node"}`), ErrKeyFileFormat, "no \"version\""},
		{"version 2", edit(t, data, func(m map[string]any) { m["version"] = 2; m["new"] = 1 }), ErrKeyFileVersion, "version 2"},
		{"version string", edit(t, data, func(m map[string]any) { m["version"] = "1" }), ErrKeyFileFormat, "not an integer"},
		{"unknown field", edit(t, data, func(m map[string]any) { m["comment"] = "x" }), ErrKeyFileFormat, "comment"},
		{"trailing data", append(bytes.Clone(data), "{}"...), ErrKeyFileFormat, "after top-level value"},
		{"too large", bytes.Repeat([]byte(" "), maxKeyFileSize+1), ErrKeyFileFormat, "at most"},
		{"unknown kind", edit(t, data, func(m map[string]any) { m["kind"] = "admin" }), ErrKeyFileFormat, "unknown kind"},
		{"node kind, user key text", edit(t, data, func(m map[string]any) { m["public"] = testKey(t, 1).Public().String() }), ErrWrongPrefix, "public key of a node key"},
		{"bad created", edit(t, data, func(m map[string]any) { m["created"] = "yesterday" }), ErrKeyFileFormat, "RFC 3339"},
		{"unknown cipher", edit(t, data, func(m map[string]any) { m["cipher"] = "des" }), ErrKeyFileFormat, "unknown cipher"},
		{"nonce size", edit(t, data, func(m map[string]any) { m["cipher"] = cipherAESGCM }), ErrKeyFileFormat, "nonce is 24 bytes"},
		{"short ciphertext", edit(t, data, func(m map[string]any) { m["ciphertext"] = []byte{1} }), ErrKeyFileFormat, "too short"},
		{"kdf name", edit(t, data, kdfField("name", "scrypt")), ErrKDFParams, "scrypt"},
		{"memory 2 GiB", edit(t, data, kdfField("memory_kib", 2<<20)), ErrKDFParams, "memory_kib"},
		{"memory below floor", edit(t, data, kdfField("memory_kib", 8192)), ErrKDFParams, "memory_kib"},
		{"time 100", edit(t, data, kdfField("time", 100)), ErrKDFParams, "time 100"},
		{"time 1", edit(t, data, kdfField("time", 1)), ErrKDFParams, "time 1"},
		{"threads 0", edit(t, data, kdfField("threads", 0)), ErrKDFParams, "threads 0"},
		{"threads 17", edit(t, data, kdfField("threads", 17)), ErrKDFParams, "threads 17"},
		{"threads 300", edit(t, data, kdfField("threads", 300)), ErrKeyFileFormat, "threads"},
		{"salt 8 bytes", edit(t, data, kdfField("salt", make([]byte, 8))), ErrKDFParams, "salt is 8 bytes"},
		{"salt 65 bytes", edit(t, data, kdfField("salt", make([]byte, 65))), ErrKDFParams, "salt is 65 bytes"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			_, err := parseKeyFile(tc.data)
			if !errors.Is(err, tc.want) || (err == nil) != (tc.want == nil) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if err != nil && !strings.Contains(err.Error(), tc.msg) {
				t.Fatalf("message %q does not say %q", err, tc.msg)
			}
		})
	}
}

// TestKeyFileGolden reads key files written by an earlier build, so a
// change that breaks reading existing files fails here. -update writes
// fresh ones (salt and nonce are random, so the bytes always change).
func TestKeyFileGolden(t *testing.T) {
	t.Parallel()
	tests := []struct {
		file   string
		kf     *KeyFile
		cipher string
	}{
		{"root-v1.key", rootKeyFile(t), cipherXChaCha},
		{"device-v1.key", deviceKeyFile(t), cipherAESGCM},
	}
	for _, tc := range tests {
		t.Run(tc.file, func(t *testing.T) {
			t.Parallel()
			golden := filepath.Join("testdata", tc.file)
			if *update {
				_ = os.Remove(golden)
				if err := writeKeyFile(golden, tc.kf, testPass, testOpts(tc.cipher)); err != nil {
					t.Fatal(err)
				}
			}
			data, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			// git does not keep mode 0600; ReadKeyFile rightly insists on it.
			path := filepath.Join(t.TempDir(), tc.file)
			if err := os.WriteFile(path, data, 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := ReadKeyFile(path, testPass)
			if err != nil {
				t.Fatal(err)
			}
			sameKeyFile(t, got, tc.kf)
		})
	}
}

func FuzzParseKeyFile(f *testing.F) {
	for _, name := range []string{"root-v1.key", "device-v1.key"} {
		b, err := os.ReadFile(filepath.Join("testdata", name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"version":1}`))
	f.Add([]byte(`{"version":1e9}`))
	f.Add([]byte(`[]`))
	f.Fuzz(func(t *testing.T, data []byte) {
		kf, err := parseKeyFile(data)
		if err != nil {
			return
		}
		// Whatever parses has bounded KDF parameters and a header that
		// encodes as associated data.
		if err := kf.KDF.check(); err != nil {
			t.Fatalf("parsed out-of-bounds kdf: %v", err)
		}
		if _, err := kf.associatedData(); err != nil {
			t.Fatalf("parsed header does not encode: %v", err)
		}
	})
}
