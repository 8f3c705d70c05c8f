package identity

import (
	"fmt"
	"io"
	"time"
)

// KeyKind says what a key file holds.
type KeyKind string

// Key kinds.
const (
	KindRoot   KeyKind = "root"   // a person's root key, with its mnemonic
	KindDevice KeyKind = "device" // a device key a root certifies
	KindNode   KeyKind = "node"   // a node's key (signing, and sealing via SealKey)

	// Release keys sign The Update Framework metadata of node software
	// (docs/formats/release.md), one kind per role, so a key made for the
	// online timestamp role cannot be taken for a root key by mistake.
	KindReleaseRoot      KeyKind = "release-root"
	KindReleaseTargets   KeyKind = "release-targets"
	KindReleaseSnapshot  KeyKind = "release-snapshot"
	KindReleaseTimestamp KeyKind = "release-timestamp"
)

// IsRelease reports whether k is one of the release key kinds.
func (k KeyKind) IsRelease() bool {
	switch k {
	case KindReleaseRoot, KindReleaseTargets, KindReleaseSnapshot, KindReleaseTimestamp:
		return true
	}
	return false
}

// KeyFile is the decrypted content of a key file (see
// docs/formats/keyfile.md). It never prints secrets; a root key file's
// mnemonic is reachable only through Mnemonic.
type KeyFile struct {
	Kind    KeyKind
	Key     PrivateKey
	Created time.Time         // written in UTC, to the second; zero means now
	Twin    uint64            // the twin's ledger id, 0 if not known yet
	Cert    *SignedDeviceCert // device keys only, optional

	mnemonic string // root keys only
}

// NewRootKeyFile derives the root key from a mnemonic and returns a key
// file that keeps both, so the person can show the mnemonic again later.
func NewRootKeyFile(mnemonic string) (*KeyFile, error) {
	norm, err := normalizeMnemonic(mnemonic)
	if err != nil {
		return nil, err
	}
	r, err := RootFromMnemonic(norm)
	if err != nil {
		return nil, err
	}
	return &KeyFile{Kind: KindRoot, Key: r.Key(), mnemonic: norm}, nil
}

// NewKeyFile returns a key file for a device or node key.
func NewKeyFile(kind KeyKind, key PrivateKey) (*KeyFile, error) {
	if kind != KindDevice && kind != KindNode && !kind.IsRelease() {
		return nil, fmt.Errorf("%w: kind %q: use NewRootKeyFile for root keys, else %q, %q or a release kind", ErrBadKeyFile, kind, KindDevice, KindNode)
	}
	kf := &KeyFile{Kind: kind, Key: key}
	if err := kf.validate(); err != nil {
		return nil, err
	}
	return kf, nil
}

// Public is the key's public half.
func (kf *KeyFile) Public() PublicKey { return kf.Key.Public() }

// PublicText is the public key's text form for the file's kind: zgnode1…
// for node keys, zgpub1… otherwise.
func (kf *KeyFile) PublicText() string {
	if kf.Kind == KindNode {
		return kf.Public().NodeString()
	}
	return kf.Public().String()
}

// Mnemonic is a root key file's 24 words; empty for other kinds.
func (kf *KeyFile) Mnemonic() string { return kf.mnemonic }

// Root re-derives the root from a root key file's mnemonic.
func (kf *KeyFile) Root() (Root, error) {
	if kf.Kind != KindRoot || kf.mnemonic == "" {
		return Root{}, fmt.Errorf("%w: a %s key file has no mnemonic", ErrBadKeyFile, kf.Kind)
	}
	return RootFromMnemonic(kf.mnemonic)
}

// SealKey returns the file's sealing key: the root's (from the mnemonic)
// for root key files, Key.SealKey() for the others.
func (kf *KeyFile) SealKey() (SealPrivateKey, error) {
	if kf.Kind == KindRoot {
		r, err := kf.Root()
		if err != nil {
			return SealPrivateKey{}, err
		}
		return r.SealKey(), nil
	}
	return kf.Key.SealKey()
}

// validate checks that the fields agree with each other and the kind.
func (kf *KeyFile) validate() error {
	if kf.Key.IsZero() {
		return fmt.Errorf("%w: no key", ErrBadKeyFile)
	}
	switch kf.Kind {
	case KindRoot:
		return kf.validateRoot()
	case KindDevice, KindNode, KindReleaseRoot, KindReleaseTargets, KindReleaseSnapshot, KindReleaseTimestamp:
	default:
		return fmt.Errorf("%w: unknown kind %q (want root, device, node or release-ROLE)", ErrBadKeyFile, kf.Kind)
	}
	if kf.mnemonic != "" {
		return fmt.Errorf("%w: only root key files hold a mnemonic", ErrBadKeyFile)
	}
	if kf.Cert == nil {
		return nil
	}
	switch {
	case kf.Kind != KindDevice:
		return fmt.Errorf("%w: only device key files hold a device certificate", ErrBadKeyFile)
	case !kf.Cert.Cert.Device.Equal(kf.Public()):
		return fmt.Errorf("%w: the device certificate is for %s, not for this key %s", ErrBadKeyFile, kf.Cert.Cert.Device, kf.Public())
	case kf.Twin != 0 && kf.Cert.Cert.Twin != kf.Twin:
		return fmt.Errorf("%w: the device certificate names twin %d, the file twin %d", ErrBadKeyFile, kf.Cert.Cert.Twin, kf.Twin)
	}
	return nil
}

func (kf *KeyFile) validateRoot() error {
	if kf.Cert != nil {
		return fmt.Errorf("%w: only device key files hold a device certificate", ErrBadKeyFile)
	}
	r, err := kf.Root()
	if err != nil {
		return err
	}
	if !r.Public().Equal(kf.Public()) {
		return fmt.Errorf("%w: the mnemonic derives %s, not the key %s", ErrBadKeyFile, r.Public(), kf.Public())
	}
	return nil
}

// String shows only the kind and the public key.
func (kf KeyFile) String() string { return "KeyFile(" + string(kf.Kind) + " " + kf.PublicText() + ")" }

// GoString shows only the kind and the public key.
func (kf KeyFile) GoString() string { return kf.String() }

// Format makes every fmt verb print only the kind and the public key.
func (kf KeyFile) Format(f fmt.State, _ rune) { _, _ = io.WriteString(f, kf.String()) }
