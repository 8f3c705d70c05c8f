package identity

import (
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// testCost is the cheapest cost kdfParams.check allows (the OWASP floor).
var testCost = kdfCost{Time: minKDFTime, MemoryKiB: minKDFMemory, Threads: 1}

var testPass = []byte("correct horse battery staple")

func testOpts(cipher string) writeOptions {
	return writeOptions{cost: testCost, cipher: cipher, rand: rand.Reader}
}

func rootKeyFile(t testing.TB) *KeyFile {
	t.Helper()
	kf, err := NewRootKeyFile(abandonArt)
	if err != nil {
		t.Fatal(err)
	}
	kf.Created = time.Unix(certNow, 0)
	kf.Twin = 42
	return kf
}

func deviceKeyFile(t testing.TB) *KeyFile {
	t.Helper()
	root, dev, c := testCert(t)
	sc, err := root.CertifyDevice(c)
	if err != nil {
		t.Fatal(err)
	}
	kf, err := NewKeyFile(KindDevice, dev)
	if err != nil {
		t.Fatal(err)
	}
	kf.Twin, kf.Cert, kf.Created = 42, &sc, time.Unix(certNow, 0)
	return kf
}

func nodeKeyFile(t testing.TB) *KeyFile {
	t.Helper()
	kf, err := NewKeyFile(KindNode, testKey(t, 5))
	if err != nil {
		t.Fatal(err)
	}
	return kf
}

func sameKeyFile(t *testing.T, got, want *KeyFile) {
	t.Helper()
	switch {
	case got.Kind != want.Kind, !got.Public().Equal(want.Public()), got.Twin != want.Twin,
		got.Mnemonic() != want.Mnemonic(), (got.Cert == nil) != (want.Cert == nil):
		t.Fatalf("got %v twin %d, want %v twin %d", got, got.Twin, want, want.Twin)
	case got.Cert != nil && *got.Cert != *want.Cert:
		t.Fatal("device certificate changed")
	case !want.Created.IsZero() && !got.Created.Equal(want.Created):
		t.Fatalf("created %v, want %v", got.Created, want.Created)
	}
}

func TestKeyFileRoundTrip(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name   string
		kf     *KeyFile
		cipher string
		prefix string
	}{
		{"root", rootKeyFile(t), cipherXChaCha, "zgpub1"},
		{"device with cert", deviceKeyFile(t), cipherXChaCha, "zgpub1"},
		{"node, aes-256-gcm", nodeKeyFile(t), cipherAESGCM, "zgnode1"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), "key.json")
			if err := writeKeyFile(path, tc.kf, testPass, testOpts(tc.cipher)); err != nil {
				t.Fatal(err)
			}
			fi, err := os.Stat(path)
			if err != nil || fi.Mode().Perm() != 0o600 {
				t.Fatalf("mode %v, %v; want 0600", fi.Mode(), err)
			}
			checkHeader(t, path, tc.kf, tc.cipher, tc.prefix)
			got, err := ReadKeyFile(path, testPass)
			if err != nil {
				t.Fatal(err)
			}
			sameKeyFile(t, got, tc.kf)
			if _, err := got.SealKey(); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// checkHeader reads the file as a person would and checks it says what it
// is, in the documented fields, and nothing secret.
func checkHeader(t *testing.T, path string, kf *KeyFile, cipher, prefix string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(data, &m); err != nil {
		t.Fatal(err)
	}
	want := []string{"version", "kind", "public", "created", "kdf", "cipher", "nonce", "ciphertext"}
	if len(m) != len(want) {
		t.Fatalf("fields %v, want %v", m, want)
	}
	pub, _ := m["public"].(string)
	if m["version"] != 1.0 || m["kind"] != string(kf.Kind) || m["cipher"] != cipher || !strings.HasPrefix(pub, prefix) || pub != kf.PublicText() {
		t.Fatalf("header %v", m)
	}
	if kdf, _ := m["kdf"].(map[string]any); kdf["name"] != "argon2id" || kdf["memory_kib"] != float64(minKDFMemory) {
		t.Fatalf("kdf %v", kdf)
	}
	for _, secret := range []string{"abandon", fmt.Sprintf("%x", kf.Key.Seed())} {
		if strings.Contains(string(data), secret) {
			t.Fatalf("file shows secret %q", secret)
		}
	}
}

// TestKeyFileDefaultCost is the one test that pays for the default
// Argon2id cost (64 MiB, 3 passes).
func TestKeyFileDefaultCost(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "node.key")
	kf := nodeKeyFile(t)
	if err := WriteKeyFile(path, kf, testPass); err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, err := parseKeyFile(data)
	if err != nil {
		t.Fatal(err)
	}
	if f.KDF.Time != 3 || f.KDF.MemoryKiB != 65536 || f.KDF.Threads != 2 || len(f.KDF.Salt) != 16 || f.Cipher != cipherXChaCha {
		t.Fatalf("defaults: %+v %s", f.KDF, f.Cipher)
	}
	got, err := ReadKeyFile(path, testPass)
	if err != nil {
		t.Fatal(err)
	}
	sameKeyFile(t, got, kf)
}

func TestKeyFileWrongPassphrase(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "root.key")
	if err := writeKeyFile(path, rootKeyFile(t), testPass, testOpts(cipherXChaCha)); err != nil {
		t.Fatal(err)
	}
	_, err := ReadKeyFile(path, []byte("Correct horse battery staple"))
	if !errors.Is(err, ErrWrongPassphrase) || !strings.Contains(err.Error(), "wrong passphrase") || !strings.Contains(err.Error(), path) {
		t.Fatalf("got %v", err)
	}
	if _, err := ReadKeyFile(path, nil); !errors.Is(err, ErrEmptyPassphrase) {
		t.Fatalf("empty passphrase: %v", err)
	}
}

func TestKeyFileRefusesOverwrite(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	path := filepath.Join(dir, "key.json")
	if err := os.WriteFile(path, []byte("precious"), 0o600); err != nil {
		t.Fatal(err)
	}
	err := writeKeyFile(path, nodeKeyFile(t), testPass, testOpts(cipherXChaCha))
	if !errors.Is(err, ErrKeyFileExists) || !strings.Contains(err.Error(), "remove it") {
		t.Fatalf("got %v", err)
	}
	// The atomic step refuses too, when the file appears during the KDF.
	if err := installNew(path, []byte("new")); !errors.Is(err, ErrKeyFileExists) {
		t.Fatalf("link over an existing file: %v", err)
	}
	if b, _ := os.ReadFile(path); string(b) != "precious" {
		t.Fatalf("existing file changed to %q", b)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("left behind %v", entries)
	}
}

func TestKeyFileRefusesBadInput(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	stray := nodeKeyFile(t)
	stray.Cert = deviceKeyFile(t).Cert
	wrongMnemonic := rootKeyFile(t)
	wrongMnemonic.Key = testKey(t, 9)
	below := testOpts(cipherXChaCha)
	below.cost.MemoryKiB = minKDFMemory - 1
	tests := []struct {
		name string
		kf   *KeyFile
		pass []byte
		opt  writeOptions
		want error
	}{
		{"empty passphrase", nodeKeyFile(t), nil, testOpts(cipherXChaCha), ErrEmptyPassphrase},
		{"cost below floor", nodeKeyFile(t), testPass, below, ErrKDFParams},
		{"unknown cipher", nodeKeyFile(t), testPass, testOpts("rot13"), ErrKeyFileFormat},
		{"cert on a node key", stray, testPass, testOpts(cipherXChaCha), ErrBadKeyFile},
		{"mnemonic of another key", wrongMnemonic, testPass, testOpts(cipherXChaCha), ErrBadKeyFile},
		{"unknown kind", &KeyFile{Kind: "admin", Key: testKey(t, 1)}, testPass, testOpts(cipherXChaCha), ErrBadKeyFile},
		{"no key", &KeyFile{Kind: KindNode}, testPass, testOpts(cipherXChaCha), ErrBadKeyFile},
	}
	for i, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(dir, fmt.Sprint(i))
			if err := writeKeyFile(path, tc.kf, tc.pass, tc.opt); !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
			if _, err := os.Stat(path); !errors.Is(err, os.ErrNotExist) {
				t.Fatal("a file was written")
			}
		})
	}
	if _, err := NewKeyFile(KindRoot, testKey(t, 1)); !errors.Is(err, ErrBadKeyFile) {
		t.Fatalf("NewKeyFile(root): %v", err)
	}
}

func TestKeyFileMode(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "node.key")
	if err := writeKeyFile(path, nodeKeyFile(t), testPass, testOpts(cipherXChaCha)); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []os.FileMode{0o640, 0o604, 0o620, 0o602, 0o644} {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
		_, err := ReadKeyFile(path, testPass)
		if !errors.Is(err, ErrKeyFileMode) || !strings.Contains(err.Error(), "chmod 600 "+path) {
			t.Fatalf("mode %o: got %v", mode, err)
		}
	}
}

func TestKeyFileNeverPrintsSecrets(t *testing.T) {
	t.Parallel()
	kf := rootKeyFile(t)
	for _, verb := range []string{"%v", "%+v", "%#v", "%s"} {
		out := fmt.Sprintf(verb, kf) + fmt.Sprintf(verb, *kf)
		if strings.Contains(out, "abandon") || !strings.Contains(out, kf.PublicText()) {
			t.Fatalf("%s prints %q", verb, out)
		}
	}
	if b, _ := json.Marshal(kf); strings.Contains(string(b), "abandon") {
		t.Fatalf("json shows the mnemonic: %s", b)
	}
}

func TestKeyFileSealKey(t *testing.T) {
	t.Parallel()
	root := rootKeyFile(t)
	r, err := root.Root()
	if err != nil {
		t.Fatal(err)
	}
	rs, err := root.SealKey()
	if err != nil || !rs.Public().Equal(r.SealKey().Public()) {
		t.Fatalf("root key file's seal key is not the root's (%v)", err)
	}
	node := nodeKeyFile(t)
	ns, err := node.SealKey()
	ks, _ := node.Key.SealKey()
	if err != nil || !ns.Public().Equal(ks.Public()) {
		t.Fatalf("node key file's seal key is not Key.SealKey (%v)", err)
	}
	if _, err := node.Root(); !errors.Is(err, ErrBadKeyFile) {
		t.Fatalf("node.Root: %v", err)
	}
}
