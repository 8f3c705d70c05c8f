package zdb

import (
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
