package identity

import (
	"errors"
	"fmt"
	"unicode"
	"unicode/utf8"
)

// Wire tag and version of device certificates.
const (
	TagDeviceCert            = "device-cert"
	DeviceCertVersion uint16 = 1
)

// MaxDeviceNameLen bounds DeviceCert.Name in bytes.
const MaxDeviceNameLen = 64

// CertClockSkew is how far in the future (in seconds) a certificate's
// Created may lie before Verify calls it not yet valid.
const CertClockSkew = 300

// DeviceCert says that a twin's root key vouches for a device key. Whether
// the device key is still valid is not part of the certificate: the twin
// can revoke it on the ledger, and verifiers must check that too.
type DeviceCert struct {
	Twin    uint64    `cbor:"twin"`              // the twin's ledger id
	Device  PublicKey `cbor:"device"`            // the certified device key
	Name    string    `cbor:"name"`              // a label the person chose ("laptop")
	Created int64     `cbor:"created"`           // unix seconds
	Expires int64     `cbor:"expires,omitempty"` // unix seconds; 0 = no expiry
}

// SignedDeviceCert is a DeviceCert with the root's signature over
// wire.Digest(TagDeviceCert, DeviceCertVersion, Cert).
type SignedDeviceCert struct {
	Cert DeviceCert `cbor:"cert"`
	Root PublicKey  `cbor:"root"`
	Sig  Signature  `cbor:"sig"`
}

// Validate checks the certificate's fields without any signature.
func (c DeviceCert) Validate() error {
	switch {
	case c.Device.IsZero():
		return fmt.Errorf("%w: no device key", ErrBadCert)
	case c.Created <= 0:
		return fmt.Errorf("%w: created time %d is not a positive unix time", ErrBadCert, c.Created)
	case c.Expires < 0 || (c.Expires != 0 && c.Expires <= c.Created):
		return fmt.Errorf("%w: expires %d is not after created %d", ErrBadCert, c.Expires, c.Created)
	}
	return validateDeviceName(c.Name)
}

// validateDeviceName keeps names short and printable: they are shown to
// people, and control characters could forge terminal output.
func validateDeviceName(n string) error {
	switch {
	case n == "":
		return fmt.Errorf("%w: empty device name", ErrBadCert)
	case len(n) > MaxDeviceNameLen:
		return fmt.Errorf("%w: device name is %d bytes, at most %d", ErrBadCert, len(n), MaxDeviceNameLen)
	case !utf8.ValidString(n):
		return fmt.Errorf("%w: device name is not UTF-8", ErrBadCert)
	}
	for _, r := range n {
		if !unicode.IsPrint(r) {
			return fmt.Errorf("%w: device name contains the unprintable character %U", ErrBadCert, r)
		}
	}
	return nil
}

// CertifyDevice signs c with the root key. It refuses invalid certificates
// and a root certifying itself.
func (root PrivateKey) CertifyDevice(c DeviceCert) (SignedDeviceCert, error) {
	if err := c.Validate(); err != nil {
		return SignedDeviceCert{}, err
	}
	pub := root.Public()
	if c.Device.Equal(pub) {
		return SignedDeviceCert{}, fmt.Errorf("%w: the root key cannot be its own device key", ErrBadCert)
	}
	sig, err := root.Sign(TagDeviceCert, DeviceCertVersion, c)
	if err != nil {
		return SignedDeviceCert{}, fmt.Errorf("identity: sign device certificate: %w", err)
	}
	return SignedDeviceCert{Cert: c, Root: pub, Sig: sig}, nil
}

// Verify checks that s was signed by root, that its fields are valid, and
// that it is valid at now (unix seconds): not expired, and not created more
// than CertClockSkew in the future. It does not know about revocation.
func (s SignedDeviceCert) Verify(root PublicKey, now int64) error {
	if root.IsZero() || !s.Root.Equal(root) {
		return fmt.Errorf("%w: signed by %s, want %s", ErrCertRoot, s.Root, root)
	}
	if err := s.Cert.Validate(); err != nil {
		return err
	}
	if s.Cert.Device.Equal(root) {
		return fmt.Errorf("%w: the root key cannot be its own device key", ErrBadCert)
	}
	if err := root.Verify(TagDeviceCert, DeviceCertVersion, s.Cert, s.Sig); err != nil {
		if errors.Is(err, ErrBadSig) {
			return fmt.Errorf("device certificate: %w", err)
		}
		return err
	}
	if now < s.Cert.Created-CertClockSkew {
		return fmt.Errorf("%w: created %d, now %d", ErrCertNotYetValid, s.Cert.Created, now)
	}
	if s.Cert.Expires != 0 && now >= s.Cert.Expires {
		return fmt.Errorf("%w: expired %d, now %d", ErrCertExpired, s.Cert.Expires, now)
	}
	return nil
}
