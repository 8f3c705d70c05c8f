package identity

import (
	"bytes"
	"crypto/rand"
	"errors"
	"testing"
)

func TestTLSCertificateCarriesKey(t *testing.T) {
	t.Parallel()
	k, err := GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	c, err := k.TLSCertificate()
	if err != nil {
		t.Fatal(err)
	}
	got, err := CertificateKey(c.Certificate)
	if err != nil || got != k.Public() {
		t.Fatalf("CertificateKey = %s, %v; want %s", got, err, k.Public())
	}
	bad := bytes.Clone(c.Certificate[0])
	bad[len(bad)-5] ^= 1 // in the signature
	if _, err := CertificateKey([][]byte{bad}); err == nil {
		t.Fatal("a certificate with a broken signature named a key")
	}
	if _, err := CertificateKey(nil); err == nil {
		t.Fatal("no certificate named a key")
	}
	if _, err := (PrivateKey{}).TLSCertificate(); err == nil {
		t.Fatal("zero key made a certificate")
	}
	_ = errors.Is
}
