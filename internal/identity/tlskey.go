package identity

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"time"
)

// ErrNotIdentityCert: a TLS peer's certificate does not carry an ed25519
// key, so it names no identity.
var ErrNotIdentityCert = errors.New("identity: certificate does not carry an ed25519 key")

// TLSCertificate returns a self-signed X.509 certificate for the key, for
// TLS between parties that pin each other's identity keys instead of
// trusting a certificate authority (the gateway tunnel). The certificate
// carries nothing but the key; its validity is long because the pin, not
// the certificate, is what is checked.
func (p PrivateKey) TLSCertificate() (tls.Certificate, error) {
	if p.IsZero() {
		return tls.Certificate{}, errors.New("identity: no key")
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 127))
	if err != nil {
		return tls.Certificate{}, err
	}
	now := time.Now()
	tmpl := &x509.Certificate{
		SerialNumber: serial,
		Subject:      pkix.Name{CommonName: p.Public().String()},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(10 * 365 * 24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, ed25519.PublicKey(p.k.Public().(ed25519.PublicKey)), p.k)
	if err != nil {
		return tls.Certificate{}, err
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: p.k}, nil
}

// CertificateKey returns the identity key a peer's TLS certificate
// carries. It checks only that the certificate is well formed and signed
// by its own key; the caller compares the key with the one it expects.
func CertificateKey(rawCerts [][]byte) (PublicKey, error) {
	if len(rawCerts) == 0 {
		return PublicKey{}, errors.New("identity: peer sent no certificate")
	}
	c, err := x509.ParseCertificate(rawCerts[0])
	if err != nil {
		return PublicKey{}, err
	}
	pub, ok := c.PublicKey.(ed25519.PublicKey)
	if !ok || len(pub) != ed25519.PublicKeySize {
		return PublicKey{}, ErrNotIdentityCert
	}
	if err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature); err != nil {
		return PublicKey{}, err
	}
	return PublicKey(pub), nil
}
