package zdb

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestPasswordMakesNamespacePrivate: NSSET password alone closes a
// namespace to clients without the password; only an explicit NSSET public
// 1 opens it read-only to them.
func TestPasswordMakesNamespacePrivate(t *testing.T) {
	t.Parallel()
	s, _ := openStore(t, t.TempDir(), nil)
	_, addr := startServer(t, s, ServerConfig{AdminPassword: "root-pw"})

	admin := conn(t, addr)
	ok(t, admin, "AUTH", "root-pw")
	ok(t, admin, "NSNEW", "shards")
	ok(t, admin, "NSSET", "shards", "password", "pw")
	owner := conn(t, addr)
	ok(t, owner, "SELECT", "shards", "pw")
	ok(t, owner, "SET", "k", "key share")

	if info := ok(t, admin, "NSINFO", "shards").(string); !strings.Contains(info, "public: no") {
		t.Fatalf("NSINFO after NSSET password:\n%s", info)
	}
	stranger := conn(t, addr)
	fails(t, stranger, "protected and private", "SELECT", "shards")
	if v, err := do(t, stranger, "GET", "k"); err == nil && v != nil {
		t.Fatalf("a client without the password read %q", v)
	}

	ok(t, admin, "NSSET", "shards", "public", "1")
	ok(t, stranger, "SELECT", "shards")
	eq(t, "GET on a public namespace", ok(t, stranger, "GET", "k"), "key share")
	fails(t, stranger, "read-only", "SET", "k", "x")
}

// TestVersion1SettingsReadAsPrivate: version 1 made every namespace public,
// so a version 1 namespace with a password is private after an upgrade,
// and the log says how to make it public again.
func TestVersion1SettingsReadAsPrivate(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, _ := openStore(t, dir, nil)
	mustNS(t, s, "old")
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	v1 := `{"version": 1, "name": "old", "password": "pw", "public": true, "maxsize": 0, "mode": "user"}`
	if err := os.WriteFile(filepath.Join(dir, "old", settingsFileName), []byte(v1), 0o600); err != nil {
		t.Fatal(err)
	}
	s, lb := openStore(t, dir, nil)
	if !strings.Contains(lb.String(), "NSSET <name> public 1") {
		t.Fatalf("no warning about the now private namespace:\n%s", lb)
	}
	_, addr := startServer(t, s, ServerConfig{AdminPassword: "root-pw"})
	c := conn(t, addr)
	fails(t, c, "protected and private", "SELECT", "old")
	ok(t, c, "SELECT", "old", "pw")
}

// TestMaxsizeBoundsTheDisk: overwriting one key keeps the live payload
// constant, but every overwrite appends a record. maxsize bounds the bytes
// on disk: at the limit a write compacts the dead records away first, so
// rewrites never take the data files past maxsize; a write that even
// compaction cannot make room for is refused.
func TestMaxsizeBoundsTheDisk(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s, _ := openStore(t, dir, nil)
	_, addr := startServer(t, s, ServerConfig{})
	c := conn(t, addr)
	ok(t, c, "NSNEW", "box")
	ok(t, c, "NSSET", "box", "maxsize", "10000")
	ok(t, c, "SELECT", "box")
	disk := func() int64 {
		var n int64
		for _, f := range dataFiles(t, dir, "box") {
			n += fileSize(t, f)
		}
		return n
	}
	for i := range 50 {
		ok(t, c, "SET", "k", strings.Repeat(string(rune('a'+i%26)), 1000)+fmt.Sprint(i))
		if n := disk(); n > 10000 {
			t.Fatalf("after %d overwrites of a 1 KB key: %d bytes of data files, over maxsize 10000", i+1, n)
		}
	}
	// Values of 990 bytes: the live payload of ten keys fits in 10000
	// bytes, their records with headers do not.
	var err error
	for i := 0; err == nil && i < 10; i++ {
		_, err = do(t, c, "SET", fmt.Sprint("other", i), strings.Repeat("o", 990))
	}
	if !IsNamespaceFull(err) || !strings.Contains(err.Error(), "on disk") {
		t.Fatalf("ten more 990-byte keys: %v, want namespace full for the bytes on disk", err)
	}
	if n := disk(); n > 10000 {
		t.Fatalf("%d bytes of data files, over maxsize 10000", n)
	}
}
