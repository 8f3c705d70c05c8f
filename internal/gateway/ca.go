package gateway

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"math/big"
	"os"
	"path/filepath"
	"slices"
	"sync"
	"time"

	"github.com/zerogrid/zerogrid/internal/atomicfile"
)

// Local CA files in the gateway directory.
const (
	CACertFile = "ca.crt" // PEM certificate, world-readable
	CAKeyFile  = "ca.key" // PEM PKCS#8 ECDSA P-256 key, mode 0600
)

const (
	caValidity   = 10 * 365 * 24 * time.Hour
	leafValidity = 30 * 24 * time.Hour
	leafRenew    = 7 * 24 * time.Hour // reissue when less than this is left
)

// localCA is a root that may sign only names under its domain (an X.509
// name constraint), and the wildcard leaf it issued for *.DOMAIN.
type localCA struct {
	domain  string
	cert    *x509.Certificate
	certPEM []byte
	key     *ecdsa.PrivateKey
	now     func() time.Time

	mu   sync.Mutex
	leaf *tls.Certificate
}

// loadOrCreateCA reads DIR/ca.crt and DIR/ca.key, or creates them when
// neither exists. A key readable by group or others is refused.
func loadOrCreateCA(dir, domain string, now func() time.Time) (*localCA, error) {
	certPath, keyPath := filepath.Join(dir, CACertFile), filepath.Join(dir, CAKeyFile)
	certPEM, cErr := os.ReadFile(certPath)
	_, kErr := os.Stat(keyPath)
	switch {
	case errors.Is(cErr, fs.ErrNotExist) && errors.Is(kErr, fs.ErrNotExist):
		return createCA(dir, domain, now)
	case cErr != nil:
		return nil, fmt.Errorf("%w: read %s: %v (remove %s too to create a new CA)", ErrCA, certPath, cErr, keyPath)
	case kErr != nil:
		return nil, fmt.Errorf("%w: %s exists but %s: %v (remove %s to create a new CA)", ErrCA, certPath, keyPath, kErr, certPath)
	}
	fi, err := os.Stat(keyPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCA, err)
	}
	if fi.Mode().Perm()&0o077 != 0 {
		return nil, fmt.Errorf("%w: %s has mode %v: others can read the CA key; chmod 600 it", ErrCA, keyPath, fi.Mode().Perm())
	}
	keyPEM, err := os.ReadFile(keyPath)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCA, err)
	}
	return parseCA(certPEM, keyPEM, domain, certPath, now)
}

func parseCA(certPEM, keyPEM []byte, domain, certPath string, now func() time.Time) (*localCA, error) {
	cb, _ := pem.Decode(certPEM)
	kb, _ := pem.Decode(keyPEM)
	if cb == nil || cb.Type != "CERTIFICATE" || kb == nil || kb.Type != "PRIVATE KEY" {
		return nil, fmt.Errorf("%w: %s or its key is not PEM (CERTIFICATE / PRIVATE KEY)", ErrCA, certPath)
	}
	cert, err := x509.ParseCertificate(cb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrCA, certPath, err)
	}
	k, err := x509.ParsePKCS8PrivateKey(kb.Bytes)
	if err != nil {
		return nil, fmt.Errorf("%w: key of %s: %v", ErrCA, certPath, err)
	}
	key, ok := k.(*ecdsa.PrivateKey)
	if !ok || !key.PublicKey.Equal(cert.PublicKey) {
		return nil, fmt.Errorf("%w: the key does not belong to %s", ErrCA, certPath)
	}
	if !slices.Equal(cert.PermittedDNSDomains, []string{domain}) {
		return nil, fmt.Errorf("%w: %s is a CA for %v, not %q: use another directory for this domain", ErrCA, certPath, cert.PermittedDNSDomains, domain)
	}
	if now().After(cert.NotAfter) {
		return nil, fmt.Errorf("%w: %s expired on %s: remove %s and %s to create a new CA, and have clients trust it", ErrCA, certPath, cert.NotAfter.Format(time.DateOnly), CACertFile, CAKeyFile)
	}
	return &localCA{domain: domain, cert: cert, certPEM: pem.EncodeToMemory(cb), key: key, now: now}, nil
}

func createCA(dir, domain string, now func() time.Time) (*localCA, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrCA, err)
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	t := now()
	tmpl := &x509.Certificate{
		SerialNumber:                randomSerial(),
		Subject:                     pkix.Name{CommonName: "zerogrid gateway CA for " + domain},
		NotBefore:                   t.Add(-time.Hour),
		NotAfter:                    t.Add(caValidity),
		KeyUsage:                    x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid:       true,
		IsCA:                        true,
		MaxPathLenZero:              true,
		PermittedDNSDomainsCritical: true,
		PermittedDNSDomains:         []string{domain},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		return nil, fmt.Errorf("%w: create: %v", ErrCA, err)
	}
	pkcs8, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return nil, err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := writeFileAtomic(filepath.Join(dir, CAKeyFile), keyPEM, 0o600); err != nil {
		return nil, err
	}
	if err := writeFileAtomic(filepath.Join(dir, CACertFile), certPEM, 0o644); err != nil {
		return nil, err
	}
	return parseCA(certPEM, keyPEM, domain, filepath.Join(dir, CACertFile), now)
}

func writeFileAtomic(path string, data []byte, mode os.FileMode) error {
	if err := atomicfile.WriteFile(path, data, mode); err != nil {
		return fmt.Errorf("%w: %v", ErrCA, err)
	}
	return nil
}

func randomSerial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		panic(err) // crypto/rand never fails on Linux
	}
	return n
}

// getCertificate returns the wildcard leaf for *.DOMAIN and DOMAIN,
// issuing a new one when none exists or the current one nears expiry.
func (ca *localCA) getCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	ca.mu.Lock()
	defer ca.mu.Unlock()
	now := ca.now()
	if ca.leaf != nil && now.Add(leafRenew).Before(ca.leaf.Leaf.NotAfter) {
		return ca.leaf, nil
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: randomSerial(),
		Subject:      pkix.Name{CommonName: "*." + ca.domain},
		DNSNames:     []string{"*." + ca.domain, ca.domain},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(leafValidity),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if tmpl.NotAfter.After(ca.cert.NotAfter) {
		tmpl.NotAfter = ca.cert.NotAfter
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		return nil, fmt.Errorf("%w: issue leaf: %v", ErrCA, err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	ca.leaf = &tls.Certificate{Certificate: [][]byte{der, ca.cert.Raw}, PrivateKey: key, Leaf: leaf}
	return ca.leaf, nil
}

// LocalCertificates serves certificates for DOMAIN and *.DOMAIN from the
// local CA in dir (DIR/ca.crt, DIR/ca.key; created if neither exists), for
// other servers of a local grid (the portal) that share the gateway's CA.
// It returns the tls.Config.GetCertificate func and the CA certificate's path.
func LocalCertificates(dir, domain string) (func(*tls.ClientHelloInfo) (*tls.Certificate, error), string, error) {
	ca, err := loadOrCreateCA(dir, domain, time.Now)
	if err != nil {
		return nil, "", err
	}
	return ca.getCertificate, filepath.Join(dir, CACertFile), nil
}
