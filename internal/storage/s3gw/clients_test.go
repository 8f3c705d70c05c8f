package s3gw

import (
	"bytes"
	"crypto/rand"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// Real clients from Debian against the gateway: rclone (AWS SDK) and
// restic (minio-go). They skip when the binary is missing; CI installs
// both (.ci/run).

func lookPath(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("%s not installed (apt-get install %s): %v", name, name, err)
	}
	return p
}

// clientEnv is the environment of a client process: no AWS settings from
// the test's own environment (a CA bundle there breaks rclone on HTTP),
// plus extra.
func clientEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "AWS_") && !strings.HasPrefix(kv, "RCLONE_") && !strings.HasPrefix(kv, "RESTIC_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

func runClient(t *testing.T, env []string, bin string, args ...string) (string, error) {
	t.Helper()
	cmd := exec.CommandContext(t.Context(), bin, args...)
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	return string(out), err
}

// tree writes a directory of files: empty, small, several segments, nested.
func tree(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	files := map[string]int{"empty": 0, "one": 1, "a/b/c.txt": 5000, "big.bin": 3<<20 + 17, "a/mid.bin": 700_000}
	for name, n := range files {
		p := filepath.Join(dir, name)
		os.MkdirAll(filepath.Dir(p), 0o755)
		b := make([]byte, n)
		rand.Read(b)
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// sameTree fails unless every regular file of want is in got, byte for
// byte, and got has no others.
func sameTree(t *testing.T, want, got string) {
	t.Helper()
	seen := 0
	filepath.WalkDir(want, func(p string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		rel, _ := filepath.Rel(want, p)
		a, _ := os.ReadFile(p)
		b, err := os.ReadFile(filepath.Join(got, rel))
		if err != nil || !bytes.Equal(a, b) {
			t.Errorf("%s differs after the round trip (%v)", rel, err)
		}
		seen++
		return nil
	})
	n := 0
	filepath.WalkDir(got, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			n++
		}
		return err
	})
	if n != seen {
		t.Errorf("%d files came back, %d went in", n, seen)
	}
}

func rcloneEnv(g *gateway, c Credentials) []string {
	return clientEnv("RCLONE_CONFIG_ZG_TYPE=s3", "RCLONE_CONFIG_ZG_PROVIDER=Other",
		"RCLONE_CONFIG_ZG_ENDPOINT="+g.url, "RCLONE_CONFIG_ZG_ACCESS_KEY_ID="+c.AccessKeyID,
		"RCLONE_CONFIG_ZG_SECRET_ACCESS_KEY="+c.SecretAccessKey, "RCLONE_CONFIG_DIR="+os.TempDir())
}

func TestRclone(t *testing.T) {
	t.Parallel()
	rclone := lookPath(t, "rclone")
	g := newGateway(t)
	env := rcloneEnv(g, g.creds)
	src := tree(t)
	steps := [][]string{
		{"mkdir", "zg:bkt"},
		{"copy", src, "zg:bkt/data"},
		{"check", src, "zg:bkt/data", "--download"},
	}
	for _, s := range steps {
		if out, err := runClient(t, env, rclone, s...); err != nil {
			t.Fatalf("rclone %s: %v\n%s", s[0], err, out)
		}
	}
	// sync deletes what the source no longer has and adds what is new.
	os.Remove(filepath.Join(src, "one"))
	os.WriteFile(filepath.Join(src, "a", "new.txt"), []byte("new"), 0o644)
	for _, s := range [][]string{{"sync", src, "zg:bkt/data"}, {"check", src, "zg:bkt/data", "--download"}} {
		if out, err := runClient(t, env, rclone, s...); err != nil {
			t.Fatalf("rclone %s: %v\n%s", s[0], err, out)
		}
	}
	if _, ok := g.store.Lookup("bkt/data/one"); ok {
		t.Fatal("sync left a file the source no longer has")
	}
	back := t.TempDir()
	if out, err := runClient(t, env, rclone, "copy", "zg:bkt/data", back); err != nil {
		t.Fatalf("rclone copy back: %v\n%s", err, out)
	}
	sameTree(t, src, back)

	// Another user's keys, and this user's id with a wrong secret, are refused.
	other, _ := DeriveCredentials(storageSecret(t))
	for _, c := range []Credentials{other, {AccessKeyID: g.creds.AccessKeyID, SecretAccessKey: other.SecretAccessKey}} {
		out, err := runClient(t, rcloneEnv(g, c), rclone, "ls", "zg:bkt", "--retries", "1", "--low-level-retries", "1")
		if err == nil || !(strings.Contains(out, "InvalidAccessKeyId") || strings.Contains(out, "SignatureDoesNotMatch")) {
			t.Fatalf("rclone with wrong keys: %v\n%s", err, out)
		}
	}
	t.Logf("PUT payload kinds: %v", g.payloadKinds())
}

func TestRestic(t *testing.T) {
	t.Parallel()
	restic := lookPath(t, "restic")
	g := newGateway(t)
	repo := "s3:" + g.url + "/restic"
	env := clientEnv("AWS_ACCESS_KEY_ID="+g.creds.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+g.creds.SecretAccessKey,
		"RESTIC_PASSWORD=correct horse", "RESTIC_CACHE_DIR="+t.TempDir())
	src := tree(t)
	target := t.TempDir()
	for _, s := range [][]string{
		{"init"},
		{"backup", "--host", "test", src},
		{"check", "--read-data"},
		{"restore", "latest", "--target", target},
	} {
		if out, err := runClient(t, env, restic, append([]string{"-r", repo}, s...)...); err != nil {
			t.Fatalf("restic %s: %v\n%s", s[0], err, out)
		}
	}
	sameTree(t, src, filepath.Join(target, src))

	other, _ := DeriveCredentials(storageSecret(t))
	bad := clientEnv("AWS_ACCESS_KEY_ID="+other.AccessKeyID, "AWS_SECRET_ACCESS_KEY="+other.SecretAccessKey,
		"RESTIC_PASSWORD=correct horse", "RESTIC_CACHE_DIR="+t.TempDir())
	if out, err := runClient(t, bad, restic, "-r", repo, "snapshots", "--no-lock"); err == nil || !strings.Contains(out, "unknown access key id") {
		t.Fatalf("restic with another user's keys: %v\n%s", err, out)
	}
	t.Logf("PUT payload kinds: %v", g.payloadKinds())
}

// TestRcloneMultipart forces multipart uploads (5 MiB parts): the parts
// are spooled to disk, streamed into the store on completion, and removed.
func TestRcloneMultipart(t *testing.T) {
	t.Parallel()
	rclone := lookPath(t, "rclone")
	g := newGateway(t)
	env := rcloneEnv(g, g.creds)
	src := t.TempDir()
	b := make([]byte, 12<<20+3)
	rand.Read(b)
	os.WriteFile(filepath.Join(src, "big.bin"), b, 0o644)
	for _, s := range [][]string{
		{"mkdir", "zg:bkt"},
		{"copy", src, "zg:bkt", "--s3-upload-cutoff", "0", "--s3-chunk-size", "5M"},
		{"check", src, "zg:bkt", "--download"},
	} {
		if out, err := runClient(t, env, rclone, s...); err != nil {
			t.Fatalf("rclone %s: %v\n%s", s[0], err, out)
		}
	}
	if kinds := g.payloadKinds(); kinds["multipart PUT"] < 3 || kinds["multipart POST"] < 1 {
		t.Fatalf("rclone did not upload in parts: %v", kinds)
	}
	if left, _ := os.ReadDir(g.spool); len(left) != 0 {
		t.Fatalf("spool not emptied: %d entries", len(left))
	}
	e, ok := g.store.Lookup("bkt/big.bin")
	if !ok || e.Size != int64(len(b)) {
		t.Fatalf("store entry after multipart upload: %+v %v", e, ok)
	}
}
