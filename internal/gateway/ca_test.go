package gateway

import (
	"crypto/tls"
	"crypto/x509"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestLocalCAPersistsAndConstrains(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mb := newMemBackends()
	g1, err := New(Config{Domain: testDomain, Dir: dir, Backends: mb})
	if err != nil {
		t.Fatal(err)
	}
	g1.Close()
	fi, err := os.Stat(filepath.Join(dir, CAKeyFile))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 {
		t.Fatalf("CA key mode %v, want 0600", fi.Mode().Perm())
	}
	g2, err := New(Config{Domain: testDomain, Dir: dir, Backends: mb})
	if err != nil {
		t.Fatalf("restart with the same dir: %v", err)
	}
	defer g2.Close()
	if string(g1.CACertPEM()) != string(g2.CACertPEM()) {
		t.Fatal("the CA changed across a restart")
	}
	disk, _ := os.ReadFile(filepath.Join(dir, CACertFile))
	if string(disk) != string(g2.CACertPEM()) {
		t.Fatal("CACertPEM differs from ca.crt")
	}

	// The leaf verifies for names under the domain only.
	leaf, err := g2.ca.getCertificate(&tls.ClientHelloInfo{ServerName: "a." + testDomain})
	if err != nil {
		t.Fatal(err)
	}
	pool := x509.NewCertPool()
	pool.AppendCertsFromPEM(g2.CACertPEM())
	for host, ok := range map[string]bool{"a." + testDomain: true, testDomain: true, "a.b." + testDomain: false, "example.org": false} {
		_, err := leaf.Leaf.Verify(x509.VerifyOptions{DNSName: host, Roots: pool})
		if (err == nil) != ok {
			t.Errorf("leaf for %s: verify err %v, want ok=%v", host, err, ok)
		}
	}
	// The CA itself cannot sign outside its domain (name constraint).
	if got := g2.ca.cert.PermittedDNSDomains; len(got) != 1 || got[0] != testDomain || !g2.ca.cert.PermittedDNSDomainsCritical {
		t.Fatalf("CA name constraint %v", got)
	}
}

func TestLocalCARefusals(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mb := newMemBackends()
	g, err := New(Config{Domain: testDomain, Dir: dir, Backends: mb})
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	_, err = New(Config{Domain: "other.test", Dir: dir, Backends: mb})
	if !errors.Is(err, ErrCA) || !strings.Contains(err.Error(), "not \"other.test\"") {
		t.Fatalf("other domain, same dir: %v", err)
	}
	os.Chmod(filepath.Join(dir, CAKeyFile), 0o644)
	_, err = New(Config{Domain: testDomain, Dir: dir, Backends: mb})
	if !errors.Is(err, ErrCA) || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("world-readable key: %v", err)
	}
	os.Remove(filepath.Join(dir, CAKeyFile))
	_, err = New(Config{Domain: testDomain, Dir: dir, Backends: mb})
	if !errors.Is(err, ErrCA) {
		t.Fatalf("cert without key: %v", err)
	}
	old := t.TempDir()
	g, err = New(Config{Domain: testDomain, Dir: old, Backends: mb, Now: func() time.Time { return time.Now().Add(-11 * 365 * 24 * time.Hour) }})
	if err != nil {
		t.Fatal(err)
	}
	g.Close()
	_, err = New(Config{Domain: testDomain, Dir: old, Backends: mb})
	if !errors.Is(err, ErrCA) || !strings.Contains(err.Error(), "expired") {
		t.Fatalf("expired CA: %v", err)
	}
}

func TestLeafRenewsBeforeExpiry(t *testing.T) {
	t.Parallel()
	now := time.Now()
	ca, err := loadOrCreateCA(t.TempDir(), testDomain, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	a, _ := ca.getCertificate(nil)
	b, _ := ca.getCertificate(nil)
	if a != b {
		t.Fatal("leaf reissued while fresh")
	}
	now = now.Add(leafValidity - leafRenew + time.Hour)
	c, _ := ca.getCertificate(nil)
	if c == a || !c.Leaf.NotAfter.After(a.Leaf.NotAfter) {
		t.Fatal("leaf not reissued near expiry")
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	mb := newMemBackends()
	for _, tc := range []struct {
		name string
		cfg  Config
	}{
		{"no domain", Config{Dir: "x", Backends: mb}},
		{"bad domain", Config{Domain: "a..b", Dir: "x", Backends: mb}},
		{"underscore", Config{Domain: "a_b.test", Dir: "x", Backends: mb}},
		{"no dir", Config{Domain: testDomain, Backends: mb}},
		{"no backends", Config{Domain: testDomain, Dir: "x"}},
		{"acme no email", Config{Domain: testDomain, Dir: t.TempDir(), Backends: mb, ACME: &ACMEConfig{DirectoryURL: "https://acme.example/dir"}}},
		{"acme bad email", Config{Domain: testDomain, Dir: t.TempDir(), Backends: mb, ACME: &ACMEConfig{DirectoryURL: "https://acme.example/dir", Email: "Ops <ops@x.org>"}}},
		{"acme http", Config{Domain: testDomain, Dir: t.TempDir(), Backends: mb, ACME: &ACMEConfig{DirectoryURL: "http://acme.example/dir", Email: "ops@x.org"}}},
		{"acme relative", Config{Domain: testDomain, Dir: t.TempDir(), Backends: mb, ACME: &ACMEConfig{DirectoryURL: "/dir", Email: "ops@x.org"}}},
	} {
		if _, err := New(tc.cfg); !errors.Is(err, ErrConfig) {
			t.Errorf("%s: err %v, want ErrConfig", tc.name, err)
		}
	}
}

func TestACMEConfigured(t *testing.T) {
	t.Parallel()
	mb := newMemBackends()
	mb.addHTTP(t, "alpha", nil)
	dir := t.TempDir()
	g, err := New(Config{Domain: testDomain, Dir: dir, Backends: mb, Logger: testLogger(),
		ACME: &ACMEConfig{DirectoryURL: "http://127.0.0.1:1/directory", Email: "ops@grid.test"}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if g.CACertPEM() != nil || g.magic == nil {
		t.Fatal("ACME gateway has a local CA or no certmagic config")
	}
	if _, err := os.Stat(filepath.Join(dir, CAKeyFile)); err == nil {
		t.Fatal("ACME gateway created a local CA")
	}
	iss, ok := g.magic.Issuers[0].(interface{ IssuerKey() string })
	if !ok || !strings.Contains(iss.IssuerKey(), "127.0.0.1") {
		t.Fatalf("issuer %v does not use the configured directory", g.magic.Issuers)
	}
	if !strings.Contains(strings.Join(g.tlsConf.NextProtos, ","), acmeALPN) {
		t.Fatal("TLS-ALPN-01 not offered")
	}
	// On-demand issuance only for live names under the domain.
	for host, ok := range map[string]bool{"alpha." + testDomain: true, "nobody." + testDomain: false, "alpha.example.org": false, testDomain: false} {
		if err := g.acmeDecision(t.Context(), host); (err == nil) != ok {
			t.Errorf("decision for %s: %v, want ok=%v", host, err, ok)
		}
	}
}

func TestGatewayKeyPersists(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	k1, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	k2, err := LoadOrCreateKey(dir)
	if err != nil {
		t.Fatal(err)
	}
	if !k1.Public().Equal(k2.Public()) {
		t.Fatal("key changed across loads")
	}
	os.Chmod(filepath.Join(dir, KeyFile), 0o640)
	if _, err := LoadOrCreateKey(dir); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("group-readable key: %v", err)
	}
	os.Chmod(filepath.Join(dir, KeyFile), 0o600)
	os.WriteFile(filepath.Join(dir, KeyFile), []byte("zz"), 0o600)
	if _, err := LoadOrCreateKey(dir); err == nil || !strings.Contains(err.Error(), "hex seed") {
		t.Fatal("garbage key accepted")
	}
}
